//! Connection limits of the HTTP server: a global cap and a cap per client
//! address, so that one client cannot take every slot and starve the
//! scrapes of everyone else.
//!
//! When a cap is reached the newcomer is not simply turned away, because a
//! flood of silent sockets would then keep every legitimate scraper out:
//! a connection that has not yet sent a complete request head is closed
//! first (the oldest of them), then one idle between requests (the longest
//! idle). At the per-address cap only that address's own connections are
//! candidates, so a flooding client recycles its own sockets and nobody
//! else's. At the global cap, when every connection is busy (requests
//! pipelined back to back, or waiting for something), the address holding
//! the most connections gives one up, the one that has made the most
//! requests, as long as it holds at least two more than the newcomer's
//! address: every address keeps a fair share, whatever the others send.
//! Only when no address holds more than its share is the newcomer refused.
//!
//! What one connection may queue is bounded too: HTTP/1.1 reads at most
//! 16 KiB of pipelined requests ahead (the rest waits in the client's
//! socket), HTTP/2 runs 32 streams at once, and after
//! [`MAX_REQUESTS_PER_CONNECTION`] requests a connection is asked to close,
//! so that none keeps its slot forever by never pausing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

/// Connections served at once; Prometheus needs one per scrape, and 512
/// leaves room for dashboards and probes.
pub const MAX_HTTP_CONNECTIONS: usize = 512;

/// Connections from one client address (an IPv4 address, or an IPv6 /64,
/// the block one host usually controls): three quarters of the global cap,
/// so that one address, however busy, always leaves 128 connections to the
/// others, while a NAT gateway, a proxy or a load test from one address can
/// still run hundreds of concurrent scrapes.
pub const MAX_HTTP_CONNECTIONS_PER_ADDRESS: usize = MAX_HTTP_CONNECTIONS / 4 * 3;

/// Requests one connection serves before it is asked to close (HTTP/1.1
/// `Connection: close`, HTTP/2 GOAWAY), as nginx's `keepalive_requests`:
/// Prometheus reconnects once in hours, a connection pipelining without
/// pause gives its slot back to the accept queue every few thousand.
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 1000;

/// Where a client comes from, for the per-address cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    AddrKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address has [`MAX_HTTP_CONNECTIONS_PER_ADDRESS`] busy connections.
    PerAddress,
    /// The server has its maximum of busy connections.
    Full,
}

/// State one connection shares with the tracker.
#[derive(Debug)]
pub struct ConnShared {
    accepted: Instant,
    /// Whether a request head has arrived yet. Busy or idle is read from
    /// `in_flight` itself, never kept beside it: with HTTP/2 streams
    /// starting and ending concurrently a second flag could say idle while
    /// a request runs.
    started: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds since `accepted` of the last request's end.
    idle_since_ms: AtomicU64,
    /// Requests started on this connection.
    requests: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
    /// Signalled once, at the [`MAX_REQUESTS_PER_CONNECTION`]th request.
    retire: Notify,
}

impl ConnShared {
    /// True until the connection's first request head has arrived.
    pub fn is_fresh(&self) -> bool {
        !self.started.load(Ordering::Acquire)
    }

    /// Resolves when the tracker closes this connection for a newcomer.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Resolves once the connection has started
    /// [`MAX_REQUESTS_PER_CONNECTION`] requests: time to close it
    /// gracefully (after the request in progress).
    pub async fn retired(&self) {
        self.retire.notified().await;
    }

    /// Marks a request as started; the connection is busy until the
    /// returned guard drops.
    pub fn begin(self: &Arc<Self>) -> Activity {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.store(true, Ordering::Release);
        let nth = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        if nth == MAX_REQUESTS_PER_CONNECTION {
            // A permit is kept if nobody waits yet.
            self.retire.notify_one();
        }
        Activity(self.clone(), nth >= MAX_REQUESTS_PER_CONNECTION)
    }
}

/// A request in progress on a connection.
pub struct Activity(Arc<ConnShared>, bool);

impl Activity {
    /// Whether this request used up its connection's
    /// [`MAX_REQUESTS_PER_CONNECTION`]: its answer says the connection
    /// closes.
    pub fn is_last(&self) -> bool {
        self.1
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = u64::try_from(self.0.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.0.idle_since_ms.store(ms, Ordering::Release);
        }
    }
}

struct Entry {
    key: AddrKey,
    shared: Arc<ConnShared>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    per_addr: HashMap<AddrKey, usize>,
    conns: HashMap<u64, Entry>,
}

/// Counts connections and picks which to close when a cap is reached.
pub struct ConnTracker {
    max_total: usize,
    max_per_addr: usize,
    inner: Mutex<Inner>,
    emptied: Notify,
}

impl ConnTracker {
    pub fn new(max_total: usize, max_per_addr: usize) -> Arc<ConnTracker> {
        Arc::new(ConnTracker {
            max_total: max_total.max(1),
            max_per_addr: max_per_addr.max(1),
            inner: Mutex::new(Inner::default()),
            emptied: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update
        // is a few plain assignments.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, closing an idle one if a cap is
    /// reached, or says why it cannot.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refused> {
        let key = AddrKey::of(ip);
        let mut inner = self.lock();
        if inner.per_addr.get(&key).copied().unwrap_or(0) >= self.max_per_addr {
            let victim = pick_victim(&inner, |e| e.key == key).ok_or(Refused::PerAddress)?;
            evict(&mut inner, victim);
        }
        if inner.conns.len() >= self.max_total {
            let victim = pick_for_newcomer(&inner, key).ok_or(Refused::Full)?;
            evict(&mut inner, victim);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let shared = Arc::new(ConnShared {
            accepted: Instant::now(),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            retire: Notify::new(),
        });
        inner.conns.insert(
            id,
            Entry {
                key,
                shared: shared.clone(),
            },
        );
        *inner.per_addr.entry(key).or_insert(0) += 1;
        Ok(ConnPermit {
            id,
            tracker: self.clone(),
            shared,
        })
    }

    /// Connections currently counted.
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Connections currently counted for `ip`'s address.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.lock()
            .per_addr
            .get(&AddrKey::of(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Waits until no connection is open.
    pub async fn drained(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn release(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(entry) = inner.conns.remove(&id) {
            forget_addr(&mut inner, entry.key);
        }
        if inner.conns.is_empty() {
            self.emptied.notify_waiters();
        }
    }
}

/// The connection to close for a newcomer: the oldest that never sent a
/// request, else the longest idle; never one with a request in progress.
fn pick_victim(inner: &Inner, eligible: impl Fn(&Entry) -> bool) -> Option<u64> {
    let mut fresh: Option<(Instant, u64)> = None;
    let mut idle: Option<(Instant, u64)> = None;
    for (id, entry) in &inner.conns {
        if !eligible(entry) {
            continue;
        }
        let s = &entry.shared;
        if s.is_fresh() {
            if fresh.is_none_or(|(t, _)| s.accepted < t) {
                fresh = Some((s.accepted, *id));
            }
        } else if s.in_flight.load(Ordering::Acquire) == 0 {
            let since = s.accepted
                + std::time::Duration::from_millis(s.idle_since_ms.load(Ordering::Acquire));
            if idle.is_none_or(|(t, _)| since < t) {
                idle = Some((since, *id));
            }
        }
    }
    fresh.or(idle).map(|(_, id)| id)
}

/// The connection to close for a newcomer from `newcomer` at the global
/// cap. If an address holds at least two more connections than the
/// newcomer's (so that it keeps at least as many as the newcomer's will
/// have), the one holding the most gives one up: a connection without a
/// request yet, else the longest idle, else, all being busy, the one that
/// has made the most requests (a pipelining or hammering client rather
/// than a scrape that asks once per interval). Otherwise nobody holds more
/// than a share, and only a connection without a request or an idle one
/// may go, of the newcomer's own address or of one holding more than it:
/// never a smaller address's, whose fresh connection may be the scrape
/// it is about to send.
fn pick_for_newcomer(inner: &Inner, newcomer: AddrKey) -> Option<u64> {
    let held = |key: &AddrKey| inner.per_addr.get(key).copied().unwrap_or(0);
    let mine = held(&newcomer);
    let top = inner
        .per_addr
        .iter()
        .filter(|(key, _)| **key != newcomer)
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| **n >= mine + 2)
        .map(|(key, _)| *key);
    match top {
        Some(top) => pick_victim(inner, |e| e.key == top).or_else(|| {
            inner
                .conns
                .iter()
                .filter(|(_, e)| e.key == top)
                .max_by_key(|(id, e)| (e.shared.requests.load(Ordering::Acquire), **id))
                .map(|(id, _)| *id)
        }),
        None => pick_victim(inner, |e| e.key == newcomer || held(&e.key) > mine),
    }
}

fn evict(inner: &mut Inner, id: u64) {
    if let Some(entry) = inner.conns.remove(&id) {
        forget_addr(inner, entry.key);
        entry.shared.evicted.store(true, Ordering::Release);
        entry.shared.evict.notify_one();
        tracing::debug!(addr = %entry.key.0, "connection limit reached; closing one of its connections");
    }
}

fn forget_addr(inner: &mut Inner, key: AddrKey) {
    if let Some(n) = inner.per_addr.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.per_addr.remove(&key);
        }
    }
}

/// A counted connection; dropping it frees the slot.
pub struct ConnPermit {
    id: u64,
    tracker: Arc<ConnTracker>,
    pub shared: Arc<ConnShared>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.tracker.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    /// Two HTTP/2 streams on one connection: when one ends, the other
    /// still runs, and the connection must not be taken for idle.
    #[test]
    fn a_connection_with_a_stream_in_flight_is_never_closed() {
        let t = Arc::new(ConnTracker::new(1, 1));
        let Ok(conn) = t.admit(ip("10.0.0.1")) else {
            panic!("the first connection is admitted");
        };
        let first = conn.shared.begin();
        let second = conn.shared.begin();
        drop(first);
        assert_eq!(t.admit(ip("10.0.0.2")).err(), Some(Refused::Full));
        drop(second);
        assert!(t.admit(ip("10.0.0.2")).is_ok(), "idle now: it gives way");
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8::1")),
            AddrKey::of(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:0:1::1")),
            AddrKey::of(ip("2001:db8:0:2::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:10.0.0.1")),
            AddrKey::of(ip("10.0.0.1"))
        );
    }

    #[test]
    fn per_address_cap_recycles_that_address_only() {
        let t = ConnTracker::new(10, 2);
        let a1 = t.admit(ip("10.0.0.1")).ok();
        let b1 = t.admit(ip("10.0.0.2")).ok();
        let a2 = t.admit(ip("10.0.0.1")).ok();
        assert!(a1.is_some() && a2.is_some() && b1.is_some());
        // A third from .1 closes .1's oldest fresh connection, not .2's.
        let a3 = t.admit(ip("10.0.0.1")).ok();
        assert!(a3.is_some());
        assert!(a1
            .as_ref()
            .is_some_and(|s| s.shared.evicted.load(Ordering::Acquire)));
        assert!(!b1
            .as_ref()
            .is_some_and(|s| s.shared.evicted.load(Ordering::Acquire)));
        assert_eq!(t.open_from(ip("10.0.0.1")), 2);
        assert_eq!(t.open(), 3);
        // Dropping an evicted slot does not count it twice.
        drop(a1);
        assert_eq!(t.open(), 3);
    }

    #[test]
    fn busy_connections_of_a_fair_share_are_never_closed() {
        let t = ConnTracker::new(2, 2);
        let a = t.admit(ip("10.0.0.1")).ok();
        let b = t.admit(ip("10.0.0.2")).ok();
        let _ra = a.as_ref().map(|s| s.shared.begin());
        let _rb = b.as_ref().map(|s| s.shared.begin());
        // One each: nobody holds more than a newcomer's share.
        assert_eq!(t.admit(ip("10.0.0.3")).err(), Some(Refused::Full));
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Full));
    }

    /// Every connection busy (pipelining, say), all from two addresses:
    /// a third address still gets in, at the expense of the address that
    /// holds the most, and of its connection that made the most requests.
    #[test]
    fn at_the_global_cap_the_biggest_address_gives_way() {
        let t = ConnTracker::new(5, 5);
        let mut held = Vec::new();
        for (addr, n) in [("10.0.0.1", 3), ("10.0.0.2", 2)] {
            for _ in 0..n {
                let c = t.admit(ip(addr)).ok();
                let busy = c.as_ref().map(|c| c.shared.begin());
                held.push((c, busy));
            }
        }
        // The second of 10.0.0.1's has made the most requests.
        if let Some(c) = &held[1].0 {
            for _ in 0..5 {
                drop(c.shared.begin());
            }
        }
        let newcomer = t.admit(ip("10.0.0.3"));
        assert!(newcomer.is_ok());
        let evicted: Vec<bool> = held
            .iter()
            .map(|(c, _)| {
                c.as_ref()
                    .is_some_and(|c| c.shared.evicted.load(Ordering::Acquire))
            })
            .collect();
        assert_eq!(evicted, [false, true, false, false, false]);
        // Now 2, 2, 1: 10.0.0.3 may not push anyone out for a second one,
        // nor 10.0.0.1 for a third.
        let _busy = newcomer.as_ref().map(|c| c.shared.begin());
        assert_eq!(t.admit(ip("10.0.0.3")).err(), Some(Refused::Full));
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Full));
        // A fourth address may: 10.0.0.1 or .2 hold two more than it.
        let fourth = t.admit(ip("10.0.0.4"));
        assert!(fourth.is_ok());
        assert_eq!(t.open(), 5);
    }

    /// An address reconnecting at the global cap recycles its own
    /// connections, never the fresh one a smaller address is about to send
    /// its scrape on.
    #[test]
    fn a_big_address_never_takes_a_smaller_ones_fresh_connection() {
        let t = ConnTracker::new(4, 4);
        let small = t.admit(ip("10.0.0.9")).ok();
        let big: Vec<_> = (0..3).map(|_| t.admit(ip("10.0.0.1")).ok()).collect();
        let mut busy: Vec<_> = big
            .iter()
            .map(|c| c.as_ref().map(|c| c.shared.begin()))
            .collect();
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Full));
        let evicted = |c: &Option<ConnPermit>| {
            c.as_ref()
                .is_some_and(|c| c.shared.evicted.load(Ordering::Acquire))
        };
        assert!(!evicted(&small));
        // Once one of its own is idle, it recycles that one.
        busy.remove(0);
        let again = t.admit(ip("10.0.0.1"));
        assert!(again.is_ok());
        assert!(evicted(&big[0]) && !evicted(&small));
    }

    #[tokio::test]
    async fn a_connection_is_retired_after_its_request_budget() {
        let t = ConnTracker::new(1, 1);
        let Ok(c) = t.admit(ip("10.0.0.1")) else {
            panic!("the first connection is admitted");
        };
        for _ in 0..MAX_REQUESTS_PER_CONNECTION - 1 {
            drop(c.shared.begin());
        }
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(10), c.shared.retired()).await;
        assert!(early.is_err(), "retired before its budget");
        drop(c.shared.begin());
        let due = tokio::time::timeout(std::time::Duration::from_secs(1), c.shared.retired()).await;
        assert!(due.is_ok(), "not retired at its budget");
    }

    #[test]
    fn fresh_goes_before_idle_at_the_global_cap() {
        let t = ConnTracker::new(2, 2);
        let idle = t.admit(ip("10.0.0.1")).ok();
        drop(idle.as_ref().map(|s| s.shared.begin()));
        let fresh = t.admit(ip("10.0.0.2")).ok();
        let newcomer = t.admit(ip("10.0.0.3")).ok();
        assert!(newcomer.is_some());
        assert!(fresh
            .as_ref()
            .is_some_and(|s| s.shared.evicted.load(Ordering::Acquire)));
        assert!(!idle
            .as_ref()
            .is_some_and(|s| s.shared.evicted.load(Ordering::Acquire)));
        // Once the newcomer is busy, the idle one goes next.
        let _busy = newcomer.as_ref().map(|s| s.shared.begin());
        let again = t.admit(ip("10.0.0.4")).ok();
        assert!(again.is_some());
        assert!(idle
            .as_ref()
            .is_some_and(|s| s.shared.evicted.load(Ordering::Acquire)));
        drop((fresh, idle, again));
    }
}
