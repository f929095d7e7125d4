//! Fault injection for the watchdog's tests: compiled only with the
//! `fault-injection` feature, which only the test build enables (the
//! crate's dev-dependency on itself); a release build has no hook at all.
//!
//! The test names a file in `PG_REPLICATION_EXPORTER_FAULTS`; each line is
//! `TARGET FAULT`, where FAULT is `panic` (the task dies outside a cycle),
//! `hang` (it stops completing cycles), `exit` (it returns) or
//! `hang-no-restart` (hangs, and the watchdog may not restart it: readers
//! must still see the target down). Each line acts once per process.

/// What a collection task is told to do. Without the feature nothing
/// ever tells it anything, so the variants are never built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub enum Fault {
    Panic,
    Hang,
    Exit,
}

#[cfg(feature = "fault-injection")]
mod hook {
    use super::Fault;
    use std::collections::HashSet;
    use std::sync::Mutex;

    const VAR: &str = "PG_REPLICATION_EXPORTER_FAULTS";

    static SUPPRESSED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    /// Lines already acted on, by any task: a restarted task must not
    /// hang again on the same line.
    static DONE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    fn lines() -> Vec<(String, String)> {
        let Some(path) = std::env::var_os(VAR) else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, f) = l.trim().split_once(' ')?;
                Some((t.to_string(), f.trim().to_string()))
            })
            .collect()
    }

    /// The fault for `target` not yet acted on.
    pub fn take(target: &str) -> Option<Fault> {
        for (t, f) in lines() {
            if t != target {
                continue;
            }
            let fresh = DONE
                .lock()
                .map(|mut d| {
                    d.get_or_insert_with(HashSet::new)
                        .insert(format!("{t} {f}"))
                })
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let fault = match f.as_str() {
                "panic" => Fault::Panic,
                "hang" => Fault::Hang,
                "exit" => Fault::Exit,
                "hang-no-restart" => {
                    if let Ok(mut s) = SUPPRESSED.lock() {
                        s.get_or_insert_with(HashSet::new)
                            .insert(target.to_string());
                    }
                    Fault::Hang
                }
                _ => continue,
            };
            tracing::warn!(target_name = %target, ?fault, "injecting a fault (test build)");
            return Some(fault);
        }
        None
    }

    pub fn restart_suppressed(target: &str) -> bool {
        SUPPRESSED
            .lock()
            .map(|s| s.as_ref().is_some_and(|s| s.contains(target)))
            .unwrap_or(false)
    }
}

/// The next fault for this target, if the test asked for one.
pub fn take(_target: &str) -> Option<Fault> {
    #[cfg(feature = "fault-injection")]
    {
        hook::take(_target)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        None
    }
}

/// Whether the watchdog must leave this target's task alone (the test
/// proves that readers see it down anyway).
pub fn restart_suppressed(_target: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        hook::restart_suppressed(_target)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        false
    }
}
