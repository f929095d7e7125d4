//! A member's role, as every reader names it: the cluster view, the
//! routing checks, the configuration lint and `status` must never disagree
//! on whether a target is a primary, a standby or down.

use std::fmt;

use serde::Serialize;

use crate::model::snapshot::TargetSnapshot;
use crate::sources::Sample;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Answers and is not in recovery.
    Primary,
    /// Answers and is in recovery (`pg_is_in_recovery()`).
    Standby,
    /// Its last collection failed or is stale: nothing it says is current.
    Down,
}

impl Role {
    /// Every role, in the order the `state` label lists them.
    pub const ALL: [Role; 3] = [Role::Primary, Role::Standby, Role::Down];

    /// The label values of [`Role::ALL`], for the family descriptors.
    pub const NAMES: [&'static str; 3] = ["primary", "standby", "down"];

    /// What a target's last sample says; no sample is down.
    pub fn of_sample(sample: Option<&Sample>) -> Role {
        match sample {
            None => Role::Down,
            Some(s) if s.server.in_recovery => Role::Standby,
            Some(_) => Role::Primary,
        }
    }

    /// A target's role in the snapshot a reader sees (the watchdog has
    /// already withheld the sample of a stale target).
    pub fn of(snap: &TargetSnapshot) -> Role {
        Role::of_sample(snap.sample.as_deref())
    }

    pub fn as_str(self) -> &'static str {
        Role::NAMES[self as usize]
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn names_follow_the_variants() {
        for role in Role::ALL {
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::Value::from(role.as_str())
            );
        }
        assert_eq!(Role::Down.to_string(), "down");
    }
}
