//! Who streams from whom inside one cluster: each standby's upstream
//! among the other members, and whether its chain of upstreams reaches the
//! primary ("cannot tell" when the monitoring role may not read the
//! replication state of a link).

use crate::model::snapshot::TargetSnapshot;
use crate::sources::replication::Walsender;
use crate::sources::wal_receiver::WalReceiverStatus;
use crate::sources::Sample;

/// Who streams from whom inside one cluster.
pub(super) struct Links<'a> {
    pub(super) members: &'a [&'a TargetSnapshot],
    /// Per member (same index), the link to the member it streams from.
    pub(super) upstream: Vec<Option<Link<'a>>>,
    /// Per member: a standby whose upstream cannot be found because its
    /// WAL receiver's details are hidden from the monitoring role.
    hidden: Vec<bool>,
    primary: Option<usize>,
}

/// A standby's link to its upstream member.
#[derive(Clone, Copy)]
pub(super) struct Link<'a> {
    /// The upstream's index among the members.
    pub(super) from: usize,
    /// Whether WAL flows now; `None` when neither the upstream's walsender
    /// nor the standby's receiver may be read (no `pg_read_all_stats`).
    streaming: Option<bool>,
    /// The upstream's walsender serving this standby, when it was found by
    /// it (not only by the standby's receiver address).
    pub(super) walsender: Option<&'a Walsender>,
}

impl<'a> Links<'a> {
    pub(super) fn new(
        members: &'a [&'a TargetSnapshot],
        primary: Option<&TargetSnapshot>,
    ) -> Links<'a> {
        let primary = primary.and_then(|p| members.iter().position(|m| std::ptr::eq(*m, p)));
        let upstream = members
            .iter()
            .enumerate()
            .map(|(i, m)| find_upstream(i, m, members))
            .collect();
        let hidden = members
            .iter()
            .map(|m| {
                m.sample
                    .as_deref()
                    .is_some_and(|s| s.server.in_recovery && receiver_streams(s).is_none())
            })
            .collect();
        Links {
            members,
            upstream,
            hidden,
            primary,
        }
    }

    /// The chain from the primary down to member `i`'s upstream: whether
    /// every link of it streams, cannot be told, or is broken (or does not
    /// reach the primary).
    pub(super) fn chain(&self, i: usize) -> Chain {
        let mut chain = Vec::new();
        let mut at = i;
        let mut unknown = false;
        // A chain longer than the cluster has members loops.
        for _ in 0..self.members.len() {
            let Some(link) = self.upstream[at] else {
                return if self.hidden[at] {
                    Chain::Unknown(Vec::new())
                } else {
                    Chain::Broken
                };
            };
            match link.streaming {
                Some(false) => return Chain::Broken,
                None => unknown = true,
                Some(true) => {}
            }
            let up = link.from;
            chain.push(up);
            if Some(up) == self.primary {
                chain.reverse();
                return if unknown {
                    Chain::Unknown(chain)
                } else {
                    Chain::Reaches(chain)
                };
            }
            at = up;
        }
        Chain::Broken
    }

    /// Whether member `i` gets WAL from the primary: it is the primary, or
    /// its chain reaches it; `None` when that cannot be told.
    fn reaches_primary(&self, i: usize) -> Option<bool> {
        if Some(i) == self.primary {
            return Some(true);
        }
        self.chain(i).connected()
    }

    /// Whether a walsender with this `application_name` streams from the
    /// primary or from a standby whose own chain reaches it; `None` when a
    /// walsender with that name is there but its state is hidden from the
    /// monitoring role, or its upstream's chain cannot be told.
    pub(super) fn streams_by_name(&self, name: &str) -> Option<bool> {
        let mut unknown = false;
        for (i, m) in self.members.iter().enumerate() {
            let reaches = self.reaches_primary(i);
            if reaches == Some(false) {
                continue;
            }
            let walsenders = m.sample.as_deref().map_or(&[][..], |s| &s.replication);
            for w in walsenders.iter().filter(|w| w.serves(&[name])) {
                match (w.state.as_ref(), reaches) {
                    (Some(_), Some(true)) if w.is_streaming() => return Some(true),
                    (None, _) | (_, None) => unknown = true,
                    _ => {}
                }
            }
        }
        if unknown {
            None
        } else {
            Some(false)
        }
    }
}

/// What the view can tell of the chain from a standby up to the primary.
pub(super) enum Chain {
    /// Every link streams: the members WAL flows through, primary first.
    Reaches(Vec<usize>),
    /// Some link's state is hidden from the monitoring role; the path is
    /// there when the links themselves were found.
    Unknown(Vec<usize>),
    /// A link does not stream, or the chain does not reach the primary.
    Broken,
}

impl Chain {
    pub(super) fn connected(&self) -> Option<bool> {
        match self {
            Chain::Reaches(_) => Some(true),
            Chain::Unknown(_) => None,
            Chain::Broken => Some(false),
        }
    }

    pub(super) fn path(self) -> Vec<usize> {
        match self {
            Chain::Reaches(path) | Chain::Unknown(path) => path,
            Chain::Broken => Vec::new(),
        }
    }
}

/// Whether a standby's own WAL receiver streams: `Some(false)` when none
/// runs (no row), `None` when its row is there with every detail NULL
/// (the role lacks `pg_read_all_stats`).
fn receiver_streams(sample: &Sample) -> Option<bool> {
    sample
        .receiver_status()
        .map(|status| status == WalReceiverStatus::Streaming)
}

/// The slot a standby streams through: `primary_slot_name` (readable by
/// any role), else the one its WAL receiver reports. Its upstream's
/// walsender carries the same slot name, whatever `application_name` the
/// standby's `primary_conninfo` gives.
fn own_slot(sample: &Sample) -> Option<&str> {
    sample
        .settings
        .primary_slot_name()
        .or_else(|| sample.wal_receiver.as_ref()?.slot_name.as_deref())
        .filter(|s| !s.is_empty())
}

/// The names a standby's walsender may carry upstream: its
/// `application_name` (we cannot see its `primary_conninfo`, so the target
/// name stands in for it) or its `cluster_name`, which PostgreSQL uses when
/// `primary_conninfo` sets none.
fn walsender_names(m: &TargetSnapshot) -> Vec<&str> {
    let mut names = vec![m.name.as_str()];
    if let Some(c) = m
        .sample
        .as_deref()
        .and_then(|s| s.server.cluster_name.as_deref())
        .filter(|c| !c.is_empty())
    {
        names.push(c);
    }
    names
}

/// The member that member `i` streams from, and whether it streams now:
/// another member with a walsender named for it or streaming through its
/// slot, else the member its WAL receiver's `sender_host:sender_port`
/// points at.
fn find_upstream<'a>(
    i: usize,
    m: &TargetSnapshot,
    members: &[&'a TargetSnapshot],
) -> Option<Link<'a>> {
    let sample = m.sample.as_deref()?;
    if !sample.server.in_recovery {
        return None;
    }
    let names = walsender_names(m);
    let slot = own_slot(sample);
    let by_walsender = members.iter().enumerate().find_map(|(j, u)| {
        if j == i {
            return None;
        }
        let w = u.sample.as_deref()?.replication.iter().find(|w| {
            w.serves(&names) || slot.is_some_and(|s| w.slot_name.as_deref() == Some(s))
        })?;
        // A walsender's state is hidden without pg_read_all_stats (its
        // name and slot are not): then the standby's own receiver tells.
        let streaming = match w.state {
            Some(_) => Some(w.is_streaming()),
            None => receiver_streams(sample),
        };
        Some(Link {
            from: j,
            streaming,
            walsender: Some(w),
        })
    });
    if by_walsender.is_some() {
        return by_walsender;
    }
    let receiver = sample.wal_receiver.as_ref()?;
    let address = receiver.sender()?;
    let j = members
        .iter()
        .enumerate()
        .position(|(j, u)| j != i && !u.endpoint.is_empty() && u.endpoint == address)?;
    Some(Link {
        from: j,
        streaming: receiver_streams(sample),
        walsender: None,
    })
}
