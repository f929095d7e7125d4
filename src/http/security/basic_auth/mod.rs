//! Basic authentication against the bcrypt hashes of `basic_auth_users`,
//! built so that checking passwords cannot be turned against the host or
//! against the clients that know their password.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10, doubling per
//! cost step), so an unbounded number of checks lets anyone without a
//! password take every core, and a queue of checks lets them take every
//! connection (a request waiting for a check keeps its connection busy).
//! Here:
//!
//! - at most [`verifier_threads`] checks run at once, on their own threads,
//!   so the runtime's workers and the database beside us keep their CPUs;
//! - one client address has at most [`PER_ADDRESS_CHECKS`] checks queued or
//!   running; a further one is refused at once ([`Unavailable::AddressBusy`],
//!   429), so a flood from one place neither waits in front of everybody
//!   else nor holds connections while it waits;
//! - the queue as a whole holds only what the verifier threads can be
//!   expected to finish within [`QUEUE_BUDGET`] (from the time recent checks
//!   took), and never more than [`MAX_WAITING_CHECKS`]; beyond that a check
//!   is refused at once ([`Unavailable::Busy`], 503), so that floods from
//!   many addresses get a quick answer instead of a request deadline;
//! - the outcome for a user and password is remembered, failures as well
//!   as successes (bounded), so repeating a wrong password costs nothing and
//!   a remembered correct password never queues;
//! - the checks run inside the request deadline (the caller's timeout
//!   drops a waiting check), and [`BasicAuth::close`] makes every waiting
//!   check give up at once so shutdown does not wait for them;
//! - an unknown user is checked against a hash of the highest configured
//!   cost, and that check really runs, so that user names cannot be told
//!   from the time an answer takes (users whose hashes are cheaper than the
//!   costliest can: a warning says so at load).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch, Semaphore};

use crate::http::security::conn_limit::AddrKey;

/// The highest bcrypt cost accepted. One check at cost 16 takes about 3 s
/// on a current core (doubling per step), which still fits the 10 s request
/// deadline with a check queued ahead of it; cost 17 would not, and cost 31
/// keeps a core busy for days.
pub const MAX_COST: u32 = 16;

/// The lowest cost bcrypt defines.
pub const MIN_COST: u32 = 4;

/// Checks one client address may have queued or running at once; a
/// further one is refused at once rather than queued. Prometheus needs one
/// check per password change, the rest come from the cache.
pub const PER_ADDRESS_CHECKS: usize = 2;

/// Checks waiting for a verifier thread, all addresses together, at most
/// (a hard bound beside [`QUEUE_BUDGET`], for cheap hashes).
pub const MAX_WAITING_CHECKS: usize = 64;

/// A check is queued only when the verifier threads can be expected to
/// have done it within this time: the 10 s request deadline less 2 s for
/// the estimate to be off. A check that would only finish after the
/// deadline is refused at once instead. One check at the highest cost
/// (16, about 3 s) still fits behind one running.
pub const QUEUE_BUDGET: Duration = Duration::from_secs(8);

/// What one check is assumed to take at cost 10 until checks have been
/// timed (a current core takes 50 to 80 ms); doubled per cost step. Only
/// for `Retry-After`: until then, the queue holds one round.
const ASSUMED_AT_COST_10: Duration = Duration::from_millis(80);

/// Outcomes remembered; beyond this the oldest failures are forgotten and
/// new successes are not remembered (they are checked again).
const CACHE_ENTRIES: usize = 4096;

/// Threads checking passwords at once: half the cores, at least one and at
/// most four, leaving the rest to the exporter and the database it watches.
pub fn verifier_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores / 2).clamp(1, 4)
}

/// Why a check gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The server is shutting down.
    Closing,
    /// This client address already has [`PER_ADDRESS_CHECKS`] checks
    /// queued or running (answered 429).
    AddressBusy { retry_after: Duration },
    /// The queue holds what the verifier threads can do within
    /// [`QUEUE_BUDGET`] (answered 503).
    Busy { retry_after: Duration },
}

/// A bcrypt hash as it appears in `basic_auth_users`, checked in full.
pub fn validate_hash(hash: &str) -> Result<u32, String> {
    let bytes = hash.as_bytes();
    let prefix_ok = bytes.len() == 60
        && bytes[0] == b'$'
        && bytes[1] == b'2'
        && matches!(bytes[2], b'a' | b'b' | b'x' | b'y')
        && bytes[3] == b'$'
        && bytes[6] == b'$';
    if !prefix_ok {
        return Err(
            "not a bcrypt hash: expected $2a$, $2b$ or $2y$, a two-digit cost and 53 characters \
             of salt and hash (60 in all)"
                .into(),
        );
    }
    let cost: u32 = std::str::from_utf8(&bytes[4..6])
        .ok()
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .ok_or("not a bcrypt hash: the cost is not two digits")?;
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside {MIN_COST}..={MAX_COST} (one check at cost 17 already \
             takes about the whole 10 s request deadline)"
        ));
    }
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    if !bytes[7..].iter().all(|&b| alphabet(b)) {
        return Err("not a bcrypt hash: salt and hash use characters outside ./A-Za-z0-9".into());
    }
    // Let the bcrypt implementation itself read it, at the lowest cost so
    // that this costs a millisecond: whatever it cannot decode would lock
    // the user out at the first request.
    let cheap = format!("{}{:02}{}", &hash[..4], MIN_COST, &hash[6..]);
    bcrypt::verify("", &cheap).map_err(|_| "not a bcrypt hash: malformed salt or hash")?;
    Ok(cost)
}

type Digest = [u8; 32];

#[derive(Default)]
struct Cache {
    ok: HashSet<Digest>,
    bad: HashSet<Digest>,
    bad_order: VecDeque<Digest>,
}

impl Cache {
    fn get(&self, key: &Digest) -> Option<bool> {
        if self.ok.contains(key) {
            Some(true)
        } else if self.bad.contains(key) {
            Some(false)
        } else {
            None
        }
    }

    fn put(&mut self, key: Digest, ok: bool) {
        if ok {
            // Only a correct password can add here, so this only fills up
            // with many passwords bcrypt takes as equal (beyond 72 bytes).
            if self.ok.len() < CACHE_ENTRIES {
                self.ok.insert(key);
            }
        } else if self.bad.insert(key) {
            self.bad_order.push_back(key);
            while self.bad_order.len() > CACHE_ENTRIES {
                if let Some(old) = self.bad_order.pop_front() {
                    self.bad.remove(&old);
                }
            }
        }
    }
}

/// Users and their bcrypt hashes, and the machinery that bounds checking
/// them.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// Checked for unknown users: the highest configured cost.
    dummy: String,
    salt: [u8; 16],
    /// Shared with the verifying threads, which record their outcome
    /// themselves: a check whose request gave up (client timeout, request
    /// deadline) still spares the next scrape its cost.
    cache: Arc<Mutex<Cache>>,
    cpu: Arc<Semaphore>,
    /// The permits of `cpu`: the verifier threads.
    threads: usize,
    queue: Mutex<Queue>,
    /// What a check took lately (nanoseconds, a moving average), measured
    /// by the verifying threads: the queue admits what fits in
    /// [`QUEUE_BUDGET`] at this pace.
    check_nanos: Arc<AtomicU64>,
    closed: watch::Sender<bool>,
    /// bcrypt checks completed, for tests.
    checks_done: Arc<AtomicUsize>,
}

/// Checks admitted and not yet answered.
#[derive(Default)]
struct Queue {
    /// Per client address: its checks queued or running.
    per_addr: HashMap<AddrKey, usize>,
    /// Admitted checks waiting for a verifier thread.
    waiting: usize,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash once, at load: whatever bcrypt could not decode
    /// would otherwise lock its user out at the first request. The error
    /// names the user, never the hash.
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> Result<BasicAuth, String> {
        let mut costs = BTreeSet::new();
        let mut checked = HashMap::new();
        for (user, hash) in users {
            let c = validate_hash(&hash)
                .map_err(|e| format!("user \"{}\": {e}", user.escape_debug()))?;
            costs.insert(c);
            checked.insert(user, hash);
        }
        let cost = costs.last().copied().unwrap_or(MIN_COST);
        if costs.len() > 1 {
            // The dummy check of an unknown name costs what the costliest
            // user's does, so a cheaper user's name answers faster than a
            // name that does not exist. The highest cost rather than the
            // most common: the users whose hashes were made costliest on
            // purpose are the ones that cannot be told from unknown names,
            // and every name guessed costs the guesser the most.
            tracing::warn!(
                costs = ?costs,
                "basic_auth_users: the bcrypt hashes have different costs; an unknown user name \
                 is checked at the highest, so the names of users with cheaper hashes can be \
                 told by the time an answer takes: hash every user at the same cost"
            );
        }
        let threads = verifier_threads();
        let mut salt = [0u8; 16];
        // Without randomness the digests are merely unsalted; they never
        // leave the process either way.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        Ok(BasicAuth {
            users: checked,
            dummy: dummy_hash(cost),
            salt,
            cache: Arc::new(Mutex::new(Cache::default())),
            cpu: Arc::new(Semaphore::new(threads)),
            threads,
            queue: Mutex::new(Queue::default()),
            check_nanos: Arc::new(AtomicU64::new(assumed_check_time(cost))),
            closed: watch::channel(false).0,
            checks_done: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// bcrypt checks run so far.
    pub fn checks_done(&self) -> usize {
        self.checks_done.load(Ordering::SeqCst)
    }

    /// What a check takes lately.
    fn check_time(&self) -> Duration {
        Duration::from_nanos(self.check_nanos.load(Ordering::Relaxed))
    }

    /// The cost an unknown user's check takes.
    #[cfg(test)]
    fn dummy_cost(&self) -> u32 {
        validate_hash(&self.dummy).unwrap_or(0)
    }

    /// Makes waiting and future checks give up (shutdown).
    pub fn close(&self) {
        self.closed.send_replace(true);
        self.cpu.close();
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        lock(&self.cache)
    }

    fn digest(&self, user: &str, password: &str) -> Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Checks an `Authorization` header value from `peer`.
    pub async fn check(
        &self,
        header: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<bool, Unavailable> {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Ok(false);
        };
        let key = self.digest(&user, &password);
        if let Some(ok) = self.cache().get(&key) {
            return Ok(ok);
        }
        let mut closed = self.closed.subscribe();
        if *closed.borrow() {
            return Err(Unavailable::Closing);
        }
        // Admitted or refused before any waiting: a refused request is
        // answered now, and its connection is free again.
        let mut ticket = self.admit(peer)?;
        let work = async {
            let cpu = self
                .cpu
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Unavailable::Closing)?;
            ticket.running();
            // Another check of the same credentials may have finished
            // while this one waited.
            if let Some(ok) = self.cache().get(&key) {
                return Ok(ok);
            }
            let (known, hash) = match self.users.get(&user) {
                Some(h) => (true, h.clone()),
                None => (false, self.dummy.clone()),
            };
            let (tx, rx) = oneshot::channel();
            let done = self.checks_done.clone();
            let pace = self.check_nanos.clone();
            let cache = self.cache.clone();
            // A thread of its own rather than the runtime's blocking pool:
            // the runtime does not wait for it at shutdown, and the permit
            // it carries keeps the number of them bounded even when the
            // request that asked has given up.
            let spawned = std::thread::Builder::new()
                .name("bcrypt".into())
                .spawn(move || {
                    let started = Instant::now();
                    // Always the full check, the dummy one for an unknown
                    // user included: `known && verify(..)` would skip it
                    // and answer unknown names a hundred times faster.
                    let matched =
                        std::hint::black_box(bcrypt::verify(password, &hash).unwrap_or(false));
                    let ok = known && matched;
                    record_pace(&pace, started.elapsed());
                    done.fetch_add(1, Ordering::SeqCst);
                    drop(cpu);
                    lock(&cache).put(key, ok);
                    let _ = tx.send(ok);
                });
            if spawned.is_err() {
                return Ok(false);
            }
            // Waited for even for an unknown user: answering before the
            // dummy check is done would tell which names exist.
            Ok(rx.await.unwrap_or(false))
        };
        tokio::select! {
            result = work => result,
            _ = closed.wait_for(|c| *c) => Err(Unavailable::Closing),
        }
    }

    /// Takes a place in the queue for a check from `peer`, or says at once
    /// why there is none: its address has [`PER_ADDRESS_CHECKS`] already,
    /// or the checks ahead would keep this one past [`QUEUE_BUDGET`].
    fn admit(&self, peer: Option<IpAddr>) -> Result<Ticket<'_>, Unavailable> {
        let addr = peer.map(AddrKey::of);
        let each = self.check_time();
        let mut queue = lock(&self.queue);
        if let Some(addr) = addr {
            if queue.per_addr.get(&addr).copied().unwrap_or(0) >= PER_ADDRESS_CHECKS {
                return Err(Unavailable::AddressBusy {
                    retry_after: retry_after(scaled(each, PER_ADDRESS_CHECKS as f64)),
                });
            }
        }
        let running = self.threads.saturating_sub(self.cpu.available_permits());
        if running + queue.waiting >= self.threads {
            // Every thread is taken: this check waits for the running ones
            // (half done, on average), then for the rounds of those waiting
            // ahead of it, then takes its own turn.
            // Until a check has been timed, the pace is a guess (a
            // debug build or a loaded host is ten times slower): one round
            // waits at most.
            let rounds = queue.waiting as f64 / self.threads as f64;
            let done_in = scaled(each, rounds + 1.5);
            let untimed = self.checks_done() == 0 && queue.waiting >= self.threads;
            if untimed || queue.waiting >= MAX_WAITING_CHECKS || done_in > QUEUE_BUDGET {
                return Err(Unavailable::Busy {
                    retry_after: retry_after(scaled(each, rounds + 0.5)),
                });
            }
        }
        queue.waiting += 1;
        if let Some(addr) = addr {
            *queue.per_addr.entry(addr).or_insert(0) += 1;
        }
        Ok(Ticket {
            auth: self,
            addr,
            waiting: true,
        })
    }

    /// Checks waiting for a thread and addresses with checks, for tests.
    #[cfg(test)]
    fn queued(&self) -> (usize, usize) {
        let queue = lock(&self.queue);
        (queue.waiting, queue.per_addr.len())
    }
}

/// A check's place in the queue: counted against its address until the
/// check is answered or given up, and as waiting until it runs.
struct Ticket<'a> {
    auth: &'a BasicAuth,
    addr: Option<AddrKey>,
    waiting: bool,
}

impl Ticket<'_> {
    /// The check got a verifier thread.
    fn running(&mut self) {
        if std::mem::take(&mut self.waiting) {
            let mut queue = lock(&self.auth.queue);
            queue.waiting = queue.waiting.saturating_sub(1);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.auth.queue);
        if self.waiting {
            queue.waiting = queue.waiting.saturating_sub(1);
        }
        if let Some(addr) = self.addr {
            if let Some(n) = queue.per_addr.get_mut(&addr) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    queue.per_addr.remove(&addr);
                }
            }
        }
    }
}

/// What a check at `cost` is assumed to take before any was timed.
fn assumed_check_time(cost: u32) -> u64 {
    let nanos = ASSUMED_AT_COST_10.as_nanos() as f64 * 2f64.powi(cost as i32 - 10);
    nanos as u64
}

/// Folds one check's duration into the moving average (a quarter weight:
/// a few checks follow a change of pace, one slow check does not).
fn record_pace(pace: &AtomicU64, took: Duration) {
    let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let _ = pace.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(old / 4 * 3 + took / 4)
    });
}

/// `each` times `factor`, saturating (`Duration::mul_f64` panics on
/// overflow).
fn scaled(each: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(each.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// A `Retry-After` in whole seconds: 1 to 60.
fn retry_after(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_secs_f64().ceil().clamp(1.0, 60.0) as u64)
}

/// Every holder leaves the guarded data consistent (a few plain
/// assignments), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hash of `cost` that no password matches in practice; checking it
/// costs what checking a real hash of that cost does. Built from a cost-4
/// hash with the cost field rewritten, so it costs nothing to make.
fn dummy_hash(cost: u32) -> String {
    let base = bcrypt::hash_with_salt("pg_replication_exporter", MIN_COST, [7u8; 16])
        .map(|h| h.to_string())
        .unwrap_or_default();
    match base.get(7..) {
        Some(rest) if rest.len() == 53 => format!("$2b${cost:02}${rest}"),
        // Unreachable with bcrypt's fixed format; a wrong dummy only
        // changes timing, never the answer (unknown users are refused).
        _ => base,
    }
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests;
