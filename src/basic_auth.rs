//! Basic authentication against the bcrypt hashes of `basic_auth_users`,
//! built so that checking passwords cannot be turned against the host.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10, doubling per
//! cost step), so an unbounded number of checks lets anyone without a
//! password take every core. Here:
//!
//! - at most [`verifier_threads`] checks run at once, on their own threads,
//!   so the runtime's workers and the database beside us keep their CPUs;
//! - one client address has at most [`PER_ADDRESS_CHECKS`] checks queued or
//!   running, so a flood from one place waits behind itself, not in front
//!   of everybody else;
//! - the outcome for a user and password is remembered, failures as well
//!   as successes (bounded), so repeating a wrong password costs nothing;
//! - the checks run inside the request deadline (the caller's timeout
//!   drops a waiting check), and [`BasicAuth::close`] makes every waiting
//!   check give up at once so shutdown does not wait for them;
//! - an unknown user is checked against a hash of the highest configured
//!   cost, so that user names cannot be told from the time an answer takes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, watch, Semaphore};

use crate::conn_limit::AddrKey;

/// The highest bcrypt cost accepted. One check at cost 16 takes about 3 s
/// on a current core (doubling per step), which still fits the 10 s request
/// deadline with a check queued ahead of it; cost 17 would not, and cost 31
/// keeps a core busy for days.
pub const MAX_COST: u32 = 16;

/// The lowest cost bcrypt defines.
pub const MIN_COST: u32 = 4;

/// Checks one client address may have queued or running at once.
pub const PER_ADDRESS_CHECKS: usize = 2;

/// Outcomes remembered; beyond this the oldest failures are forgotten and
/// new successes are not remembered (they are checked again).
const CACHE_ENTRIES: usize = 4096;

/// Threads checking passwords at once: half the cores, at least one and at
/// most four, leaving the rest to the exporter and the database it watches.
pub fn verifier_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// Why a check gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The server is shutting down.
    Closing,
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
    per_addr: Mutex<HashMap<AddrKey, Arc<Semaphore>>>,
    closed: watch::Sender<bool>,
    /// bcrypt checks completed, for tests.
    checks_done: Arc<std::sync::atomic::AtomicUsize>,
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
        let mut cost = MIN_COST;
        let mut checked = HashMap::new();
        for (user, hash) in users {
            let c = validate_hash(&hash)
                .map_err(|e| format!("user \"{}\": {e}", user.escape_debug()))?;
            cost = cost.max(c);
            checked.insert(user, hash);
        }
        let mut salt = [0u8; 16];
        // Without randomness the digests are merely unsalted; they never
        // leave the process either way.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        Ok(BasicAuth {
            users: checked,
            dummy: dummy_hash(cost),
            salt,
            cache: Arc::new(Mutex::new(Cache::default())),
            cpu: Arc::new(Semaphore::new(verifier_threads())),
            per_addr: Mutex::new(HashMap::new()),
            closed: watch::channel(false).0,
            checks_done: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        })
    }

    /// bcrypt checks run so far.
    pub fn checks_done(&self) -> usize {
        self.checks_done.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The cost an unknown user's check takes.
    pub fn dummy_cost(&self) -> u32 {
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
        let work = async {
            let slot = peer.map(|ip| self.address_slot(ip));
            let _addr_permit = match &slot {
                Some(s) => Some(s.sem.acquire().await.map_err(|_| Unavailable::Closing)?),
                None => None,
            };
            // Another check of the same credentials may have finished
            // while this one waited.
            if let Some(ok) = self.cache().get(&key) {
                return Ok(ok);
            }
            let cpu = self
                .cpu
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Unavailable::Closing)?;
            if let Some(ok) = self.cache().get(&key) {
                return Ok(ok);
            }
            let (known, hash) = match self.users.get(&user) {
                Some(h) => (true, h.clone()),
                None => (false, self.dummy.clone()),
            };
            let (tx, rx) = oneshot::channel();
            let done = self.checks_done.clone();
            let cache = self.cache.clone();
            // A thread of its own rather than the runtime's blocking pool:
            // the runtime does not wait for it at shutdown, and the permit
            // it carries keeps the number of them bounded even when the
            // request that asked has given up.
            let spawned = std::thread::Builder::new()
                .name("bcrypt".into())
                .spawn(move || {
                    let ok = known && bcrypt::verify(password, &hash).unwrap_or(false);
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

    fn address_slot(&self, ip: IpAddr) -> AddressSlot<'_> {
        let key = AddrKey::of(ip);
        // Each entry is removed by the last `AddressSlot` using it.
        let mut map = self.per_addr.lock().unwrap_or_else(|e| e.into_inner());
        let sem = map
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ADDRESS_CHECKS)))
            .clone();
        AddressSlot {
            auth: self,
            key,
            sem,
        }
    }
}

fn lock(cache: &Mutex<Cache>) -> MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client address's share of the checks; forgets the address when the
/// last of its checks is done.
struct AddressSlot<'a> {
    auth: &'a BasicAuth,
    key: AddrKey,
    sem: Arc<Semaphore>,
}

impl Drop for AddressSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.auth.per_addr.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else waits on it.
        if Arc::strong_count(&self.sem) == 2 {
            map.remove(&self.key);
        }
    }
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
mod tests {
    use super::*;
    use std::time::Duration;

    fn users(users: HashMap<String, String>) -> BasicAuth {
        BasicAuth::new(users).expect("valid hashes")
    }

    fn header(u: &str, p: &str) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn basic_header() {
        assert_eq!(
            parse_basic("Basic cHJvbTpzZWNyZXQ="),
            Some(("prom".into(), "secret".into()))
        );
        assert_eq!(
            parse_basic("basic cHJvbTpzZWNyZXQ="),
            Some(("prom".into(), "secret".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn hashes_are_validated_in_full() {
        let good = bcrypt::hash("x", 4).unwrap_or_default();
        assert_eq!(validate_hash(&good), Ok(4));
        let y = good.replacen("$2b$", "$2y$", 1);
        assert_eq!(validate_hash(&y), Ok(4));
        for bad in [
            "$2y$10$abc".to_string(),
            "$2zzzzz".to_string(),
            good.replacen("$04$", "$99$", 1),
            good.replacen("$04$", "$31$", 1),
            good.replacen("$04$", "$17$", 1),
            good.replacen("$04$", "$03$", 1),
            good.replacen("$04$", "$x4$", 1),
            format!("{good}x"),
            good.replacen("$2b$", "$3b$", 1),
            format!("{}!", &good[..59]),
            String::new(),
        ] {
            assert!(validate_hash(&bad).is_err(), "{bad} accepted");
        }
        assert_eq!(validate_hash(&good.replacen("$04$", "$16$", 1)), Ok(16));
    }

    /// The request that asked gave up (Prometheus' scrape timeout, the
    /// request deadline): the finished check still answers the next one.
    #[tokio::test]
    async fn a_check_whose_request_gave_up_is_still_remembered() {
        let hash = bcrypt::hash("secret", 8).unwrap_or_default();
        let auth = Arc::new(users([("prom".to_string(), hash)].into_iter().collect()));
        let h = header("prom", "secret");
        let gave_up =
            tokio::time::timeout(Duration::from_millis(1), auth.check(Some(&h), None)).await;
        assert!(gave_up.is_err(), "a cost-8 check takes longer than 1 ms");
        for _ in 0..500 {
            if auth.checks_done() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(auth.checks_done(), 1);
        assert_eq!(auth.check(Some(&h), None).await, Ok(true));
        assert_eq!(auth.checks_done(), 1, "answered from the cache");
    }

    #[test]
    fn unknown_users_cost_the_highest_configured_cost() {
        let h4 = bcrypt::hash("a", 4).unwrap_or_default();
        let h6 = bcrypt::hash("b", 6).unwrap_or_default();
        let auth = users(
            [("low".to_string(), h4), ("high".to_string(), h6)]
                .into_iter()
                .collect(),
        );
        assert_eq!(auth.dummy_cost(), 6);
        let h12 = bcrypt::hash_with_salt("c", 4, [1; 16])
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replacen("$04$", "$12$", 1);
        let auth = users([("u".to_string(), h12)].into_iter().collect());
        assert_eq!(auth.dummy_cost(), 12);
        // The dummy is a well-formed hash that bcrypt really runs.
        assert!(bcrypt::verify("pg_replication_exporter", &dummy_hash(4)).unwrap_or(false));
        assert!(!bcrypt::verify("anything", &dummy_hash(5)).unwrap_or(true));
    }

    #[tokio::test]
    async fn bcrypt_users_and_cache() {
        let hash = bcrypt::hash("s3cret", 4).unwrap_or_default();
        let auth = users([("prom".to_string(), hash)].into_iter().collect());
        let peer = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            auth.check(Some(&header("prom", "s3cret")), peer).await,
            Ok(true)
        );
        assert_eq!(
            auth.check(Some(&header("prom", "s3cret")), None).await,
            Ok(true)
        );
        assert_eq!(
            auth.check(Some(&header("prom", "wrong")), peer).await,
            Ok(false)
        );
        assert_eq!(
            auth.check(Some(&header("prom", "wrong")), peer).await,
            Ok(false)
        );
        assert_eq!(
            auth.check(Some(&header("nobody", "s3cret")), peer).await,
            Ok(false)
        );
        assert_eq!(auth.check(None, peer).await, Ok(false));
        assert!(auth.cache().bad.len() == 2 && auth.cache().ok.len() == 1);
        // One real check each for the right password, the wrong one and
        // the unknown user; repeats came from the cache.
        assert_eq!(auth.checks_done(), 3);
        // The per-address bookkeeping is gone once checks are done.
        assert!(auth.per_addr.lock().map(|m| m.is_empty()).unwrap_or(false));
        auth.close();
        // Cached answers still come; new checks give up.
        assert_eq!(
            auth.check(Some(&header("prom", "s3cret")), peer).await,
            Ok(true)
        );
        assert_eq!(
            auth.check(Some(&header("prom", "other")), peer).await,
            Err(Unavailable::Closing)
        );
    }

    #[tokio::test]
    async fn an_unknown_user_waits_for_a_full_check() {
        let hash = bcrypt::hash("s3cret", 6).unwrap_or_default();
        let auth = users([("prom".to_string(), hash)].into_iter().collect());
        for n in 0..3 {
            assert_eq!(
                auth.check(Some(&header("nobody", &format!("p{n}"))), None)
                    .await,
                Ok(false)
            );
            // The answer came only after bcrypt ran at the users' cost.
            assert_eq!(auth.checks_done(), n + 1);
        }
        assert_eq!(auth.dummy_cost(), 6);
    }

    #[test]
    fn failure_cache_is_bounded() {
        let mut c = Cache::default();
        for i in 0..(CACHE_ENTRIES + 10) {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            c.put(k, false);
        }
        assert_eq!(c.bad.len(), CACHE_ENTRIES);
        assert_eq!(c.bad_order.len(), CACHE_ENTRIES);
    }
}
