//! The exporter's own health: per target, whether collection works and
//! keeps up; for the process, its build and whether the last configuration
//! reload took.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use crate::build_info as build;
use crate::family::{emit, flag, Family, Label, Scope, TARGET};
use crate::model::view::View;

pub const UP: Family = Family::gauge(
    "pgrepl_up",
    "1 when the last collection from the target succeeded and is recent, else 0 (also when no collection finished within the interval, timeout and grace).",
    "1 cuando la última recolección del target funcionó y es reciente; si no, 0 (también cuando ninguna recolección terminó dentro del intervalo, el timeout y el margen).",
    &[TARGET],
    Scope::Target,
);

pub const COLLECT_DURATION_SECONDS: Family = Family::gauge(
    "pgrepl_collect_duration_seconds",
    "How long the last collection from the target took.",
    "Cuánto tardó la última recolección del target.",
    &[TARGET],
    Scope::Target,
);

pub const COLLECT_ERRORS: Family = Family::counter(
    "pgrepl_collect_errors",
    "Failed collections from the target since the exporter started.",
    "Recolecciones fallidas del target desde que arrancó el exporter.",
    &[TARGET],
    Scope::Target,
);

pub const LAST_COLLECT_SUCCESS_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_last_collect_success_timestamp_seconds",
    "Unix time of the last successful collection from the target.",
    "Hora Unix de la última recolección exitosa del target.",
    &[TARGET],
    Scope::Target,
)
.when(
    "after the first successful collection",
    "tras la primera recolección exitosa",
);

pub const COLLECT_INTERVAL_SECONDS: Family = Family::gauge(
    "pgrepl_collect_interval_seconds",
    "Configured time between two collections of the target (collect_interval); alerts judge staleness against it.",
    "Tiempo configurado entre dos recolecciones del target (collect_interval); las alertas juzgan la antigüedad contra él.",
    &[TARGET],
    Scope::Target,
);

pub const COLLECTOR_RESTARTS: Family = Family::counter(
    "pgrepl_collector_restarts",
    "Times the watchdog restarted the target's collection task because it died or stopped completing cycles (a bug: please report it).",
    "Veces que el watchdog reinició la tarea de recolección del target porque murió o dejó de completar ciclos (un bug: repórtelo).",
    &[TARGET],
    Scope::Target,
);

pub const CONFIG_LAST_RELOAD_SUCCESSFUL: Family = Family::gauge(
    "pgrepl_config_last_reload_successful",
    "1 when the last configuration load (start or reload) succeeded, 0 when the last reload was refused and the previous configuration still runs.",
    "1 cuando la última carga de configuración (arranque o recarga) funcionó; 0 cuando la última recarga se rechazó y sigue la configuración anterior.",
    &[],
    Scope::Exporter,
);

pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful configuration load (start or reload).",
    "Hora Unix de la última carga de configuración exitosa (arranque o recarga).",
    &[],
    Scope::Exporter,
);

pub const TIMELINE_CHANGES: Family = Family::counter(
    "pgrepl_timeline_changes",
    "Timeline switches the exporter has seen on this server (promotions, standbys following a new primary).",
    "Cambios de timeline que el exporter vio en este servidor (promociones, réplicas que siguen a un nuevo principal).",
    &[TARGET],
    Scope::Target,
)
.when(
    "once a timeline was read; kept while the target is down",
    "desde que se leyó un timeline; se mantiene mientras el target está caído",
);

pub const EXPORTER_BUILD_INFO: Family = Family::gauge(
    "pgrepl_exporter_build_info",
    "Build of pg_replication_exporter (value 1): version, git revision and branch, rustc version.",
    "Compilación de pg_replication_exporter (valor 1): versión, revisión y rama de git, versión de rustc.",
    &[
        Label::text("version", "the crate version"),
        Label::text("revision", "git commit the binary was built from (`unknown` outside git)"),
        Label::text("branch", "git branch the binary was built from (`unknown` outside git)"),
        Label::text("rustc_version", "version of the Rust compiler"),
    ],
    Scope::Exporter,
);

pub const FAMILIES: &[Family] = &[
    UP,
    COLLECT_DURATION_SECONDS,
    COLLECT_ERRORS,
    LAST_COLLECT_SUCCESS_TIMESTAMP_SECONDS,
    COLLECT_INTERVAL_SECONDS,
    COLLECTOR_RESTARTS,
    TIMELINE_CHANGES,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
    EXPORTER_BUILD_INFO,
];

pub fn encode(view: &View, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let snaps = &view.targets;
    let per_target = |f: fn(&crate::model::snapshot::TargetSnapshot) -> Option<f64>| {
        snaps
            .iter()
            .filter_map(move |s| Some(([("target", s.name.as_str())], f(s)?)))
    };
    emit(enc, &UP, per_target(|s| Some(flag(s.up()))))?;
    emit(
        enc,
        &COLLECT_DURATION_SECONDS,
        per_target(|s| Some(s.collect_duration)),
    )?;
    emit(
        enc,
        &COLLECT_ERRORS,
        per_target(|s| Some(s.errors_total as f64)),
    )?;
    emit(
        enc,
        &LAST_COLLECT_SUCCESS_TIMESTAMP_SECONDS,
        per_target(|s| s.last_success),
    )?;
    emit(
        enc,
        &COLLECT_INTERVAL_SECONDS,
        per_target(|s| Some(s.interval.as_secs_f64())),
    )?;
    emit(
        enc,
        &COLLECTOR_RESTARTS,
        per_target(|s| Some(s.restarts as f64)),
    )?;
    // Kept while the target is down: a counter must not vanish and reappear.
    emit(
        enc,
        &TIMELINE_CHANGES,
        per_target(|s| s.last_timeline.map(|_| s.timeline_changes as f64)),
    )?;
    let reload = &view.reload;
    emit(
        enc,
        &CONFIG_LAST_RELOAD_SUCCESSFUL,
        std::iter::once(([] as [(&str, &str); 0], flag(reload.successful))),
    )?;
    emit(
        enc,
        &CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
        std::iter::once(([] as [(&str, &str); 0], reload.last_success)),
    )?;
    emit(
        enc,
        &EXPORTER_BUILD_INFO,
        std::iter::once((
            [
                ("version", build::VERSION),
                ("revision", build::REVISION),
                ("branch", build::BRANCH),
                ("rustc_version", build::RUSTC_VERSION),
            ],
            1.0,
        )),
    )
}
