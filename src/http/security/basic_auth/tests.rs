//! Checking passwords with bounded CPU and bounded queues.

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
    let gave_up = tokio::time::timeout(Duration::from_millis(1), auth.check(Some(&h), None)).await;
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
    // The queue's bookkeeping is gone once checks are done.
    assert_eq!(auth.queued(), (0, 0));
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

/// Waits (2 s at most) until `n` checks wait in the queue.
async fn until_waiting(auth: &BasicAuth, n: usize) {
    for _ in 0..200 {
        if auth.queued().0 == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(auth.queued().0, n, "checks waiting");
}

/// With every verifier thread taken: a third check from one address
/// is refused at once, and the queue over all addresses holds only
/// what fits in the budget at the pace checks take; beyond, refused at
/// once with a Retry-After. When the threads free up, everything
/// admitted is answered and the queue empties.
#[tokio::test]
async fn the_queue_refuses_at_once_beyond_its_bounds() {
    let hash = bcrypt::hash("s3cret", 4).unwrap_or_default();
    let auth = Arc::new(users([("prom".to_string(), hash)].into_iter().collect()));
    let right = header("prom", "s3cret");
    assert_eq!(auth.check(Some(&right), None).await, Ok(true));
    // Checks take a second each, and every thread is busy.
    auth.check_nanos.store(1_000_000_000, Ordering::Relaxed);
    let threads = auth.threads;
    let held = auth.cpu.clone().acquire_many_owned(threads as u32).await;
    let mut tasks = Vec::new();
    let spawn = |n: usize, ip: [u8; 4]| {
        let auth = auth.clone();
        tokio::spawn(async move {
            auth.check(Some(&header("prom", &format!("p{n}"))), Some(ip.into()))
                .await
        })
    };
    for n in 0..2 {
        tasks.push(spawn(n, [10, 0, 0, 1]));
        until_waiting(&auth, n + 1).await;
    }
    let third = auth
        .check(Some(&header("prom", "p2")), Some([10, 0, 0, 1].into()))
        .await;
    assert_eq!(
        third,
        Err(Unavailable::AddressBusy {
            retry_after: Duration::from_secs(2)
        })
    );
    // Each waiting check adds 1/threads s; the running ones count for
    // half a check, its own for one: (w / threads + 1.5) s <= 8 s.
    let fits = (6.5 * threads as f64).floor() as usize + 1;
    for n in 2..fits {
        tasks.push(spawn(n, [10, 0, 1, n as u8]));
        until_waiting(&auth, n + 1).await;
    }
    let beyond = tokio::time::timeout(
        Duration::from_secs(5),
        auth.check(Some(&header("prom", "late")), Some([10, 0, 2, 1].into())),
    )
    .await;
    let beyond = beyond.unwrap_or(Err(Unavailable::Closing));
    assert!(
        matches!(beyond, Err(Unavailable::Busy { retry_after }) if retry_after >= Duration::from_secs(6)),
        "{beyond:?}"
    );
    // A remembered password never queues.
    assert_eq!(
        auth.check(Some(&right), Some([10, 0, 2, 1].into())).await,
        Ok(true)
    );
    drop(held);
    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(false))));
    }
    assert_eq!(auth.queued(), (0, 0));
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
