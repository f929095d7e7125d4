//! Settings replication depends on: `pg_settings`, read with their units so
//! every value is exported in base units whatever the version calls them
//! (`wal_keep_segments` before 13, `wal_keep_size` after).
//!

use std::collections::HashMap;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::sync_names::SyncNames;
use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, Family, Label, Scope, TARGET};

/// Settings read each cycle besides [`INFO_LABELS`]. `primary_conninfo` is
/// deliberately not among them: it may hold the replication password.
pub const NAMES: [&str; 15] = [
    "max_wal_senders",
    "max_replication_slots",
    "wal_keep_size",
    "wal_keep_segments",
    "wal_segment_size",
    "max_slot_wal_keep_size",
    "max_wal_size",
    "recovery_min_apply_delay",
    "max_standby_streaming_delay",
    "max_standby_archive_delay",
    "archive_timeout",
    "primary_slot_name",
    "wal_sender_timeout",
    "wal_receiver_timeout",
    "idle_replication_slot_timeout",
];

/// Text settings exported as labels of `pgrepl_settings_info`.
const INFO_LABELS: [&str; 9] = [
    "wal_level",
    "synchronous_commit",
    "synchronous_standby_names",
    "hot_standby",
    "hot_standby_feedback",
    "wal_log_hints",
    "data_checksums",
    "full_page_writes",
    "archive_mode",
];

/// `name -> [setting, unit]` as `pg_settings` has them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Settings(HashMap<String, (String, Option<String>)>);

fn sql() -> String {
    let names: Vec<String> = NAMES
        .iter()
        .chain(INFO_LABELS.iter())
        .map(|n| format!("'{n}'"))
        .collect();
    format!(
        "SELECT coalesce(json_object_agg(name, json_build_array(setting, unit)), '{{}}') \
         FROM pg_settings WHERE name IN ({})",
        names.join(", ")
    )
}

/// A setting's value as `pg_settings` has it: the text and its unit.
impl Settings {
    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(v, _)| v.as_str())
    }

    /// The raw number, without unit conversion.
    fn number(&self, name: &str) -> Option<f64> {
        self.text(name)?.parse().ok()
    }

    /// A boolean setting (`pg_settings` writes `on` or `off`); `None`
    /// when the server has no such setting.
    fn boolean(&self, name: &str) -> Option<bool> {
        self.text(name)
            .map(|v| matches!(v, "on" | "true" | "yes" | "1"))
    }

    /// A memory setting in bytes; `None` for -1 ("unlimited"/"disabled").
    fn bytes(&self, name: &str) -> Option<f64> {
        let (value, unit) = self.0.get(name)?;
        let v: f64 = value.parse().ok()?;
        if v < 0.0 {
            return None;
        }
        Some(v * unit_factor(unit.as_deref().unwrap_or("B"))?)
    }

    /// A time setting in seconds; -1 stays -1 (it means "wait forever").
    fn seconds(&self, name: &str) -> Option<f64> {
        let (value, unit) = self.0.get(name)?;
        let v: f64 = value.parse().ok()?;
        if v < 0.0 {
            return Some(-1.0);
        }
        Some(v * unit_factor(unit.as_deref().unwrap_or("s"))?)
    }
}

/// The settings every reader asks about, typed: the only way in.
impl Settings {
    pub fn wal_level(&self) -> Option<&str> {
        self.text("wal_level")
    }

    pub fn synchronous_commit(&self) -> Option<&str> {
        self.text("synchronous_commit")
    }

    pub fn archive_mode(&self) -> Option<&str> {
        self.text("archive_mode")
    }

    /// `synchronous_standby_names`, empty when unset.
    pub fn synchronous_standby_names(&self) -> SyncNames<'_> {
        SyncNames(self.text("synchronous_standby_names").unwrap_or(""))
    }

    /// `primary_slot_name`, empty when unset (readable by any role,
    /// unlike the WAL receiver's details).
    pub fn primary_slot_name(&self) -> Option<&str> {
        self.text("primary_slot_name")
    }

    pub fn hot_standby(&self) -> Option<bool> {
        self.boolean("hot_standby")
    }

    pub fn hot_standby_feedback(&self) -> Option<bool> {
        self.boolean("hot_standby_feedback")
    }

    pub fn wal_log_hints(&self) -> Option<bool> {
        self.boolean("wal_log_hints")
    }

    pub fn data_checksums(&self) -> Option<bool> {
        self.boolean("data_checksums")
    }

    pub fn max_wal_senders(&self) -> Option<f64> {
        self.number("max_wal_senders")
    }

    pub fn max_replication_slots(&self) -> Option<f64> {
        self.number("max_replication_slots")
    }

    pub fn max_wal_size_bytes(&self) -> Option<f64> {
        self.bytes("max_wal_size")
    }

    /// `max_slot_wal_keep_size` (13+): `None` before 13, `Some(None)` when
    /// -1 (a slot may retain WAL without limit).
    pub fn max_slot_wal_keep_size_bytes(&self) -> Option<Option<f64>> {
        self.text("max_slot_wal_keep_size")?;
        Some(self.bytes("max_slot_wal_keep_size"))
    }

    /// `wal_keep_size` (13+) or `wal_keep_segments` times the segment size.
    pub fn wal_keep_bytes(&self) -> Option<f64> {
        self.bytes("wal_keep_size")
            .or_else(|| Some(self.number("wal_keep_segments")? * self.bytes("wal_segment_size")?))
    }

    pub fn recovery_min_apply_delay_seconds(&self) -> Option<f64> {
        self.seconds("recovery_min_apply_delay")
    }

    pub fn max_standby_streaming_delay_seconds(&self) -> Option<f64> {
        self.seconds("max_standby_streaming_delay")
    }

    pub fn idle_replication_slot_timeout_seconds(&self) -> Option<f64> {
        self.seconds("idle_replication_slot_timeout")
    }

    /// `wal_receiver_timeout`: PostgreSQL's own limit for a silent link.
    pub fn wal_receiver_timeout_seconds(&self) -> Option<f64> {
        self.seconds("wal_receiver_timeout")
    }
}

/// Base-unit multiplier of a `pg_settings.unit` such as `8kB`, `MB`, `ms`.
fn unit_factor(unit: &str) -> Option<f64> {
    let digits = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let scale: f64 = if digits == 0 {
        1.0
    } else {
        unit[..digits].parse().ok()?
    };
    let base = match &unit[digits..] {
        "B" | "" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0_f64.powi(4),
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    Some(scale * base)
}

pub const MAX_WAL_SENDERS: Family = Family::gauge(
    "pgrepl_max_wal_senders",
    "max_wal_senders: most WAL sender processes (standbys, base backups) at once.",
    "max_wal_senders: máximo de procesos WAL sender (réplicas, copias base) a la vez.",
    &[TARGET],
    Scope::Server,
);

pub const MAX_REPLICATION_SLOTS: Family = Family::gauge(
    "pgrepl_max_replication_slots",
    "max_replication_slots: most replication slots the server can have.",
    "max_replication_slots: máximo de slots de replicación que puede tener el servidor.",
    &[TARGET],
    Scope::Server,
);

pub const WAL_KEEP_SIZE_BYTES: Family = Family::gauge(
    "pgrepl_wal_keep_size_bytes",
    "WAL kept for standbys without a slot (wal_keep_size, or wal_keep_segments before PostgreSQL 13).",
    "WAL conservado para réplicas sin slot (wal_keep_size, o wal_keep_segments antes de PostgreSQL 13).",
    &[TARGET],
    Scope::Server,
);

pub const MAX_SLOT_WAL_KEEP_SIZE_BYTES: Family = Family::gauge(
    "pgrepl_max_slot_wal_keep_size_bytes",
    "max_slot_wal_keep_size: most WAL a slot may retain; absent when unlimited (-1).",
    "max_slot_wal_keep_size: máximo de WAL que puede retener un slot; ausente cuando es ilimitado (-1).",
    &[TARGET],
    Scope::Server,
)
.since(13)
.when("when not -1 (unlimited)", "cuando no es -1 (ilimitado)");

pub const MAX_WAL_SIZE_BYTES: Family = Family::gauge(
    "pgrepl_max_wal_size_bytes",
    "max_wal_size: WAL size that triggers a checkpoint.",
    "max_wal_size: tamaño de WAL que dispara un checkpoint.",
    &[TARGET],
    Scope::Server,
);

pub const RECOVERY_MIN_APPLY_DELAY_SECONDS: Family = Family::gauge(
    "pgrepl_recovery_min_apply_delay_seconds",
    "recovery_min_apply_delay: configured delay of a delayed standby.",
    "recovery_min_apply_delay: retraso configurado de una réplica diferida.",
    &[TARGET],
    Scope::Server,
)
.since(12);

pub const MAX_STANDBY_STREAMING_DELAY_SECONDS: Family = Family::gauge(
    "pgrepl_max_standby_streaming_delay_seconds",
    "max_standby_streaming_delay: how long replay waits for conflicting queries; -1 waits forever.",
    "max_standby_streaming_delay: cuánto espera el replay a las consultas en conflicto; -1 espera para siempre.",
    &[TARGET],
    Scope::Server,
);

pub const IDLE_REPLICATION_SLOT_TIMEOUT_SECONDS: Family = Family::gauge(
    "pgrepl_idle_replication_slot_timeout_seconds",
    "idle_replication_slot_timeout: idle time after which a slot is invalidated; 0 never (PostgreSQL 18+).",
    "idle_replication_slot_timeout: tiempo inactivo tras el cual se invalida un slot; 0 nunca (PostgreSQL 18+).",
    &[TARGET],
    Scope::Server,
)
.since(18);

pub const SETTINGS_INFO: Family = Family::gauge(
    "pgrepl_settings_info",
    "Text settings replication depends on, as labels (value 1).",
    "Parámetros de texto de los que depende la replicación, como etiquetas (valor 1).",
    &[
        TARGET,
        Label::text("wal_level", "the setting's value"),
        Label::text("synchronous_commit", "the setting's value"),
        Label::text("synchronous_standby_names", "the setting's value"),
        Label::text("hot_standby", "the setting's value"),
        Label::text("hot_standby_feedback", "the setting's value"),
        Label::text("wal_log_hints", "the setting's value"),
        Label::text("data_checksums", "the setting's value"),
        Label::text("full_page_writes", "the setting's value"),
        Label::text("archive_mode", "the setting's value"),
    ],
    Scope::Server,
);

pub const FAMILIES: &[Family] = &[
    MAX_WAL_SENDERS,
    MAX_REPLICATION_SLOTS,
    WAL_KEEP_SIZE_BYTES,
    MAX_SLOT_WAL_KEEP_SIZE_BYTES,
    MAX_WAL_SIZE_BYTES,
    RECOVERY_MIN_APPLY_DELAY_SECONDS,
    MAX_STANDBY_STREAMING_DELAY_SECONDS,
    IDLE_REPLICATION_SLOT_TIMEOUT_SECONDS,
    SETTINGS_INFO,
];

impl Source for Settings {
    type Rows = Settings;
    const TITLE: [&'static str; 2] = [
        "Replication settings (`pg_settings`)",
        "Parámetros de replicación (`pg_settings`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(_: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql())
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    type Getter = fn(&Settings) -> Option<f64>;
    let numeric: [(&Family, Getter); 8] = [
        (&MAX_WAL_SENDERS, Settings::max_wal_senders),
        (&MAX_REPLICATION_SLOTS, Settings::max_replication_slots),
        (&WAL_KEEP_SIZE_BYTES, Settings::wal_keep_bytes),
        (&MAX_SLOT_WAL_KEEP_SIZE_BYTES, |s| {
            s.max_slot_wal_keep_size_bytes().flatten()
        }),
        (&MAX_WAL_SIZE_BYTES, Settings::max_wal_size_bytes),
        (
            &RECOVERY_MIN_APPLY_DELAY_SECONDS,
            Settings::recovery_min_apply_delay_seconds,
        ),
        (
            &MAX_STANDBY_STREAMING_DELAY_SECONDS,
            Settings::max_standby_streaming_delay_seconds,
        ),
        (
            &IDLE_REPLICATION_SLOT_TIMEOUT_SECONDS,
            Settings::idle_replication_slot_timeout_seconds,
        ),
    ];
    for (family, get) in numeric {
        emit(
            enc,
            family,
            scrape
                .servers()
                .filter_map(|u| Some(([("target", u.target)], get(&u.sample.settings)?))),
        )?;
    }
    emit(
        enc,
        &SETTINGS_INFO,
        scrape.servers().map(|u| {
            let mut labels = Vec::with_capacity(INFO_LABELS.len() + 1);
            labels.push(("target", u.target));
            for name in INFO_LABELS {
                labels.push((name, u.sample.settings.text(name).unwrap_or("")));
            }
            (labels, 1.0)
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::{render, sample};

    fn settings(pairs: &[(&str, &str, Option<&str>)]) -> Settings {
        Settings(
            pairs
                .iter()
                .map(|(n, v, u)| (n.to_string(), (v.to_string(), u.map(str::to_string))))
                .collect(),
        )
    }

    #[test]
    fn units() {
        let s = settings(&[
            ("max_wal_size", "1024", Some("MB")),
            ("max_slot_wal_keep_size", "-1", Some("MB")),
            ("recovery_min_apply_delay", "300000", Some("ms")),
            ("max_standby_streaming_delay", "-1", Some("ms")),
            ("wal_keep_segments", "10", None),
            ("wal_segment_size", "2048", Some("8kB")),
        ]);
        assert_eq!(s.max_wal_size_bytes(), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(s.max_slot_wal_keep_size_bytes(), Some(None));
        assert_eq!(s.recovery_min_apply_delay_seconds(), Some(300.0));
        assert_eq!(s.max_standby_streaming_delay_seconds(), Some(-1.0));
        assert_eq!(s.wal_keep_bytes(), Some(10.0 * 16.0 * 1024.0 * 1024.0));
        // Not there before 13.
        assert_eq!(settings(&[]).max_slot_wal_keep_size_bytes(), None);
    }

    /// Each typed accessor reads a setting the statement asks for: a name
    /// misspelt in one would read `None` forever.
    #[test]
    fn every_accessor_reads_a_setting_that_is_asked() {
        let asked: Vec<(&str, &str, Option<&str>)> = NAMES
            .iter()
            .chain(INFO_LABELS.iter())
            .map(|n| (*n, "1", None))
            .collect();
        let s = settings(&asked);
        let numbers = [
            s.max_wal_senders(),
            s.max_replication_slots(),
            s.max_wal_size_bytes(),
            s.max_slot_wal_keep_size_bytes().flatten(),
            s.wal_keep_bytes(),
            s.recovery_min_apply_delay_seconds(),
            s.max_standby_streaming_delay_seconds(),
            s.idle_replication_slot_timeout_seconds(),
            s.wal_receiver_timeout_seconds(),
        ];
        assert!(numbers.iter().all(Option::is_some), "{numbers:?}");
        let texts = [
            s.wal_level(),
            s.synchronous_commit(),
            s.archive_mode(),
            s.primary_slot_name(),
            Some(s.synchronous_standby_names().0),
        ];
        assert!(texts.iter().all(|t| *t == Some("1")), "{texts:?}");
        let flags = [
            s.hot_standby(),
            s.hot_standby_feedback(),
            s.wal_log_hints(),
            s.data_checksums(),
        ];
        assert!(flags.iter().all(|f| *f == Some(true)), "{flags:?}");
    }

    /// The settings of the `cascade` primary (PostgreSQL 15), in base units.
    #[test]
    fn settings_render_in_base_units_with_text_ones_as_labels() {
        let s = sample(serde_json::json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 0.0},
            "settings": {"archive_mode": ["on", null], "data_checksums": ["off", null],
                "full_page_writes": ["on", null], "hot_standby": ["on", null],
                "hot_standby_feedback": ["off", null], "max_replication_slots": ["10", null],
                "max_slot_wal_keep_size": ["-1", "MB"], "max_standby_streaming_delay": ["30000", "ms"],
                "max_wal_senders": ["10", null], "max_wal_size": ["1024", "MB"],
                "recovery_min_apply_delay": ["0", "ms"], "synchronous_commit": ["on", null],
                "synchronous_standby_names": ["ANY 2 (standby1, nobody)", null],
                "wal_keep_size": ["0", "MB"], "wal_level": ["replica", null],
                "wal_log_hints": ["off", null]}
        }));
        let text = render::<Settings>(&[("p", &s)]);
        for line in [
            r#"pgrepl_max_wal_senders{target="p"} 10.0"#,
            r#"pgrepl_max_replication_slots{target="p"} 10.0"#,
            r#"pgrepl_wal_keep_size_bytes{target="p"} 0.0"#,
            r#"pgrepl_max_wal_size_bytes{target="p"} 1073741824.0"#,
            r#"pgrepl_recovery_min_apply_delay_seconds{target="p"} 0.0"#,
            r#"pgrepl_max_standby_streaming_delay_seconds{target="p"} 30.0"#,
            r#"pgrepl_settings_info{target="p",wal_level="replica",synchronous_commit="on",synchronous_standby_names="ANY 2 (standby1, nobody)",hot_standby="on",hot_standby_feedback="off",wal_log_hints="off",data_checksums="off",full_page_writes="on",archive_mode="on"} 1.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        // Unlimited (-1) is no number; 18's setting is absent on 15.
        assert!(
            !text.contains("pgrepl_max_slot_wal_keep_size_bytes{"),
            "{text}"
        );
        assert!(
            !text.contains("pgrepl_idle_replication_slot_timeout_seconds{"),
            "{text}"
        );
    }
}
