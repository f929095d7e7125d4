//! Replication slots: `pg_replication_slots`.
//!
//! The WAL a slot holds back ([`ReplicationSlot::retained_bytes`]) is
//! computed here, once, for `/metrics` and the topology page.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::lsn::{self, Lsn};
use super::state::pg_state;
use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, flag, state_set, Family, Label, Scope, TARGET};

pg_state! {
    /// Whether the WAL a slot needs is still there
    /// (`pg_replication_slots.wal_status`, 13+).
    pub enum WalStatus {
        Reserved = "reserved",
        Extended = "extended",
        Unreserved = "unreserved",
        Lost = "lost",
    }
}

impl WalStatus {
    /// The slot's WAL is gone or about to be: its consumer must be
    /// re-seeded, or soon will.
    pub fn is_at_risk(&self) -> bool {
        matches!(self, WalStatus::Unreserved | WalStatus::Lost)
    }
}

pg_state! {
    /// Why PostgreSQL invalidated a slot (`invalidation_reason`, 17+).
    pub enum InvalidationReason {
        WalRemoved = "wal_removed",
        RowsRemoved = "rows_removed",
        WalLevelInsufficient = "wal_level_insufficient",
        IdleTimeout = "idle_timeout",
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplicationSlot {
    pub slot_name: String,
    pub slot_type: String,
    pub database: Option<String>,
    pub active: bool,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub restart_lsn: Option<Lsn>,
    pub xmin_age: Option<i64>,
    /// 13+.
    pub wal_status: Option<WalStatus>,
    /// 13+; NULL when `max_slot_wal_keep_size` is -1 (unlimited).
    pub safe_wal_size: Option<f64>,
    /// 16+, logical slots only.
    pub conflicting: Option<bool>,
    /// 17+.
    pub inactive_since: Option<f64>,
    /// 17+: why the slot can no longer be used.
    #[serde(default)]
    pub invalidation_reason: Option<InvalidationReason>,
    /// 17+: a logical slot the primary keeps in step on standbys
    /// (`failover => true`), so that subscribers survive a promotion.
    #[serde(default)]
    pub failover: Option<bool>,
    /// 17+, on a standby: a copy kept in step from the primary by slotsync;
    /// usable only after promotion, and it tells that failover is covered.
    #[serde(default)]
    pub synced: Option<bool>,
}

impl ReplicationSlot {
    /// WAL the server keeps for this slot: `reference` (the server's
    /// current position, [`super::Sample::reference_lsn`]) minus the slot's
    /// `restart_lsn`; `None` for a slot that has reserved no WAL.
    pub fn retained_bytes(&self, reference: Option<Lsn>) -> Option<f64> {
        Some(self.restart_lsn?.behind(reference?))
    }
}

fn sql(caps: &Capabilities) -> String {
    let v13 = if caps.at_least(13) {
        "wal_status, safe_wal_size::float8 AS safe_wal_size"
    } else {
        "NULL::text AS wal_status, NULL::float8 AS safe_wal_size"
    };
    let conflicting = if caps.at_least(16) {
        "conflicting"
    } else {
        "NULL::bool AS conflicting"
    };
    let v17 = if caps.at_least(17) {
        "EXTRACT(EPOCH FROM inactive_since)::float8 AS inactive_since, invalidation_reason, \
         failover, synced"
    } else {
        "NULL::float8 AS inactive_since, NULL::text AS invalidation_reason, \
         NULL::bool AS failover, NULL::bool AS synced"
    };
    format!(
        "SELECT coalesce(json_agg(x ORDER BY x.slot_name), '[]') FROM (SELECT \
           slot_name::text AS slot_name, slot_type, database::text AS database, active, \
           restart_lsn::text AS restart_lsn, \
           greatest(age(xmin), age(catalog_xmin)) AS xmin_age, \
           {v13}, {conflicting}, {v17} \
         FROM pg_replication_slots) x"
    )
}

impl Source for ReplicationSlot {
    type Rows = Vec<ReplicationSlot>;
    const TITLE: [&'static str; 2] = [
        "Replication slots (`pg_replication_slots`)",
        "Slots de replicación (`pg_replication_slots`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql(caps))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render_wal(scrape, enc)?;
        render_flags(scrape, enc)
    }
}

/// The labels that identify one slot, then any others.
macro_rules! slot_labels {
    ($($extra:expr),*) => {
        &[
            TARGET,
            Label::text("slot_name", "the slot's name"),
            Label::one_of("slot_type", &["physical", "logical"]),
            Label::text("database", "a logical slot's database; empty for a physical slot")
            $(, $extra)*
        ]
    };
}

const SLOT: &[Label] = slot_labels!();

const EACH_SLOT: (&str, &str) = ("for each replication slot", "por cada slot de replicación");
const EACH_SLOT_WITH_WAL: (&str, &str) = (
    "for each replication slot that has reserved WAL",
    "por cada slot de replicación que reservó WAL",
);

pub const SLOT_RETAINED_WAL_BYTES: Family = Family::gauge(
    "pgrepl_slot_retained_wal_bytes",
    "WAL the server keeps for this slot: current WAL position minus the slot's restart_lsn.",
    "WAL que el servidor conserva para este slot: posición de WAL actual menos el restart_lsn del slot.",
    SLOT,
    Scope::Server,
)
.when(EACH_SLOT_WITH_WAL.0, EACH_SLOT_WITH_WAL.1);

pub const SLOT_ACTIVE: Family = Family::gauge(
    "pgrepl_slot_active",
    "1 when a consumer (standby, pg_receivewal, subscriber) is connected to the slot.",
    "1 cuando un consumidor (réplica, pg_receivewal, suscriptor) está conectado al slot.",
    SLOT,
    Scope::Server,
)
.when(EACH_SLOT.0, EACH_SLOT.1);

pub const SLOT_WAL_STATUS: Family = Family::gauge(
    "pgrepl_slot_wal_status",
    "Availability of the WAL the slot needs: reserved, extended, unreserved (at risk) or lost (PostgreSQL 13+).",
    "Disponibilidad del WAL que necesita el slot: reserved, extended, unreserved (en riesgo) o lost (PostgreSQL 13+).",
    slot_labels!(Label::one_of("wal_status", WalStatus::NAMES)),
    Scope::Server,
)
.since(13)
.when(EACH_SLOT_WITH_WAL.0, EACH_SLOT_WITH_WAL.1);

pub const SLOT_SAFE_WAL_SIZE_BYTES: Family = Family::gauge(
    "pgrepl_slot_safe_wal_size_bytes",
    "Bytes of WAL that can still be written before this slot is in danger of losing WAL; absent when max_slot_wal_keep_size is unlimited (PostgreSQL 13+).",
    "Bytes de WAL que aún pueden escribirse antes de que este slot corra riesgo de perder WAL; ausente cuando max_slot_wal_keep_size es ilimitado (PostgreSQL 13+).",
    SLOT,
    Scope::Server,
)
.since(13)
.when(
    "for each slot, when max_slot_wal_keep_size is not -1",
    "por cada slot, cuando max_slot_wal_keep_size no es -1",
);

pub const SLOT_XMIN_AGE_XIDS: Family = Family::gauge(
    "pgrepl_slot_xmin_age_xids",
    "Age in transactions of the oldest xmin or catalog_xmin the slot holds back (blocks vacuum).",
    "Edad en transacciones del xmin o catalog_xmin más antiguo que el slot retiene (bloquea vacuum).",
    SLOT,
    Scope::Server,
)
.when(
    "for each slot holding an xmin (hot_standby_feedback, logical slots)",
    "por cada slot que retiene un xmin (hot_standby_feedback, slots lógicos)",
);

pub const SLOT_INACTIVE_SINCE_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_slot_inactive_since_timestamp_seconds",
    "Unix time since when the slot has had no consumer (PostgreSQL 17+).",
    "Hora Unix desde la que el slot no tiene consumidor (PostgreSQL 17+).",
    SLOT,
    Scope::Server,
)
.since(17)
.when("for each inactive slot", "por cada slot inactivo");

pub const SLOT_CONFLICTING: Family = Family::gauge(
    "pgrepl_slot_conflicting",
    "1 when a logical slot was invalidated by a recovery conflict (PostgreSQL 16+).",
    "1 cuando un slot lógico fue invalidado por un conflicto de recuperación (PostgreSQL 16+).",
    SLOT,
    Scope::Server,
)
.since(16)
.when("for each logical slot", "por cada slot lógico");

pub const SLOT_FAILOVER: Family = Family::gauge(
    "pgrepl_slot_failover",
    "1 when the slot is kept in step on standbys for failover (failover => true; PostgreSQL 17+).",
    "1 cuando el slot se mantiene sincronizado en las réplicas para el failover (failover => true; PostgreSQL 17+).",
    SLOT,
    Scope::Server,
)
.since(17)
.when(EACH_SLOT.0, EACH_SLOT.1);

pub const SLOT_SYNCED: Family = Family::gauge(
    "pgrepl_slot_synced",
    "1 on a standby for a slot synchronized from the primary, ready for use after promotion (PostgreSQL 17+).",
    "1 en una réplica para un slot sincronizado desde el principal, listo para usarse tras la promoción (PostgreSQL 17+).",
    SLOT,
    Scope::Server,
)
.since(17)
.when(EACH_SLOT.0, EACH_SLOT.1);

pub const SLOT_INVALIDATED: Family = Family::gauge(
    "pgrepl_slot_invalidated",
    "1 for a slot PostgreSQL has invalidated, with the reason (wal_removed, rows_removed, wal_level_insufficient, idle_timeout): its consumer must be re-seeded (PostgreSQL 17+).",
    "1 para un slot que PostgreSQL invalidó, con el motivo (wal_removed, rows_removed, wal_level_insufficient, idle_timeout): hay que volver a sembrar su consumidor (PostgreSQL 17+).",
    slot_labels!(Label::one_of("reason", InvalidationReason::NAMES)),
    Scope::Server,
)
.since(17)
.when("for each invalidated slot", "por cada slot invalidado");

pub const FAMILIES: &[Family] = &[
    SLOT_RETAINED_WAL_BYTES,
    SLOT_ACTIVE,
    SLOT_WAL_STATUS,
    SLOT_SAFE_WAL_SIZE_BYTES,
    SLOT_XMIN_AGE_XIDS,
    SLOT_INACTIVE_SINCE_TIMESTAMP_SECONDS,
    SLOT_CONFLICTING,
    SLOT_FAILOVER,
    SLOT_SYNCED,
    SLOT_INVALIDATED,
];

fn labels<'a>(t: &'a str, s: &'a ReplicationSlot) -> [(&'static str, &'a str); 4] {
    [
        ("target", t),
        ("slot_name", s.slot_name.as_str()),
        ("slot_type", s.slot_type.as_str()),
        ("database", s.database.as_deref().unwrap_or("")),
    ]
}

/// Every slot of every target that answered, with its target's name and
/// the position its retained WAL is measured against.
fn rows<'a>(
    scrape: &Scrape<'a>,
) -> impl Iterator<Item = (&'a str, Option<Lsn>, &'a ReplicationSlot)> + 'a {
    scrape.servers().flat_map(|u| {
        let reference = u.sample.reference_lsn();
        u.sample
            .slots
            .iter()
            .map(move |slot| (u.target, reference, slot))
    })
}

/// What the slots hold: WAL, its status and how much more may be written,
/// and the xmin they hold back.
fn render_wal(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &SLOT_RETAINED_WAL_BYTES,
        rows(scrape).filter_map(|(t, reference, slot)| {
            Some((labels(t, slot), slot.retained_bytes(reference)?))
        }),
    )?;
    emit(
        enc,
        &SLOT_ACTIVE,
        rows(scrape).map(|(t, _, slot)| (labels(t, slot), flag(slot.active))),
    )?;
    emit(
        enc,
        &SLOT_WAL_STATUS,
        rows(scrape).flat_map(|(t, _, slot)| {
            slot.wal_status.iter().flat_map(move |current| {
                state_set(WalStatus::NAMES, Some(current.as_str())).map(move |(state, v)| {
                    let [a, b, c, d] = labels(t, slot);
                    ([a, b, c, d, ("wal_status", state)], v)
                })
            })
        }),
    )?;
    emit(
        enc,
        &SLOT_SAFE_WAL_SIZE_BYTES,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), slot.safe_wal_size?))),
    )?;
    emit(
        enc,
        &SLOT_XMIN_AGE_XIDS,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), slot.xmin_age? as f64))),
    )
}

/// When the slot was last used, and what PostgreSQL says of it.
fn render_flags(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &SLOT_INACTIVE_SINCE_TIMESTAMP_SECONDS,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), slot.inactive_since?))),
    )?;
    emit(
        enc,
        &SLOT_CONFLICTING,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), flag(slot.conflicting?)))),
    )?;
    emit(
        enc,
        &SLOT_FAILOVER,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), flag(slot.failover?)))),
    )?;
    emit(
        enc,
        &SLOT_SYNCED,
        rows(scrape).filter_map(|(t, _, slot)| Some((labels(t, slot), flag(slot.synced?)))),
    )?;
    emit(
        enc,
        &SLOT_INVALIDATED,
        rows(scrape).filter_map(|(t, _, slot)| {
            let reason = slot.invalidation_reason.as_ref()?;
            let [a, b, c, d] = labels(t, slot);
            Some(([a, b, c, d, ("reason", reason.as_str())], 1.0))
        }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::ReplicationSlot;
    use crate::sources::testing::{render, sample};

    /// The primary of the `pg17-failover` capture (PostgreSQL 17): a
    /// physical slot its standby streams through and a logical failover
    /// slot, inactive, with one invalidated slot added.
    #[test]
    fn slots_render_their_wal_states_and_flags() {
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "17.10", "now": 1795912105.0,
                       "current_lsn": "0/2025160"},
            "slots": [
                {"active": true, "conflicting": null, "database": null, "failover": false,
                 "inactive_since": null, "invalidation_reason": null, "restart_lsn": "0/2025160",
                 "safe_wal_size": null, "slot_name": "standby1_slot", "slot_type": "physical",
                 "synced": false, "wal_status": "reserved", "xmin_age": 1},
                {"active": false, "conflicting": false, "database": "postgres", "failover": true,
                 "inactive_since": 1795912102.451704, "invalidation_reason": null,
                 "restart_lsn": "0/20250F0", "safe_wal_size": 1048576, "slot_name": "subscriber_slot",
                 "slot_type": "logical", "synced": false, "wal_status": "extended", "xmin_age": 0},
                {"active": false, "conflicting": true, "database": "app", "failover": false,
                 "inactive_since": 1795900000.0, "invalidation_reason": "rows_removed",
                 "restart_lsn": null, "safe_wal_size": null, "slot_name": "gone",
                 "slot_type": "logical", "synced": false, "wal_status": "lost", "xmin_age": null}
            ]
        }));
        let text = render::<ReplicationSlot>(&[("p", &s)]);
        let phys = r#"target="p",slot_name="standby1_slot",slot_type="physical",database="""#;
        let logi =
            r#"target="p",slot_name="subscriber_slot",slot_type="logical",database="postgres""#;
        let gone = r#"target="p",slot_name="gone",slot_type="logical",database="app""#;
        for line in [
            format!("pgrepl_slot_retained_wal_bytes{{{phys}}} 0.0"),
            format!("pgrepl_slot_retained_wal_bytes{{{logi}}} 112.0"),
            format!("pgrepl_slot_active{{{phys}}} 1.0"),
            format!("pgrepl_slot_active{{{logi}}} 0.0"),
            format!(r#"pgrepl_slot_wal_status{{{logi},wal_status="extended"}} 1.0"#),
            format!(r#"pgrepl_slot_wal_status{{{logi},wal_status="reserved"}} 0.0"#),
            format!(r#"pgrepl_slot_wal_status{{{gone},wal_status="lost"}} 1.0"#),
            format!("pgrepl_slot_safe_wal_size_bytes{{{logi}}} 1048576.0"),
            format!("pgrepl_slot_xmin_age_xids{{{phys}}} 1.0"),
            format!("pgrepl_slot_inactive_since_timestamp_seconds{{{logi}}} 1795912102.451704"),
            format!("pgrepl_slot_conflicting{{{gone}}} 1.0"),
            format!("pgrepl_slot_failover{{{logi}}} 1.0"),
            format!("pgrepl_slot_synced{{{logi}}} 0.0"),
            format!(r#"pgrepl_slot_invalidated{{{gone},reason="rows_removed"}} 1.0"#),
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        // A slot without restart_lsn holds no WAL: no series, not 0.
        assert!(!text.contains(&format!("pgrepl_slot_retained_wal_bytes{{{gone}}}")));
        assert_eq!(text.matches("pgrepl_slot_invalidated{").count(), 1);
    }

    /// Before 13 there is no wal_status: no state set of zeros.
    #[test]
    fn no_wal_status_no_state_set() {
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "10.23", "now": 0.0,
                       "current_lsn": "0/202BE38"},
            "slots": [{"active": true, "conflicting": null, "database": null, "failover": null,
                "inactive_since": null, "invalidation_reason": null, "restart_lsn": "0/202BE38",
                "safe_wal_size": null, "slot_name": "standby1_slot", "slot_type": "physical",
                "synced": null, "wal_status": null, "xmin_age": null}]
        }));
        let text = render::<ReplicationSlot>(&[("p", &s)]);
        assert!(!text.contains("pgrepl_slot_wal_status"), "{text}");
        assert!(text.contains("pgrepl_slot_active{"), "{text}");
    }
}
