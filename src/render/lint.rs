//! The configuration lint as a family: `pgrepl_config_issue{target, check}`
//! is 1 when the risk is present, 0 when the check ran and found nothing;
//! checks that do not apply to the server's role are absent. The checks
//! themselves are judged in `crate::model::lint`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;

use crate::family::{emit, flag, Family, Label, Scope, TARGET};
use crate::model::cluster::ClusterView;
use crate::model::lint::{evaluate, Check, CHECKS};
use crate::model::snapshot::TargetSnapshot;

pub const CONFIG_ISSUE: Family = Family::gauge(
    "pgrepl_config_issue",
    "1 when a setting puts replication at risk (see docs/config-lint.md for each check and its fix), 0 when the check passed.",
    "1 cuando un parámetro pone en riesgo la replicación (ver docs/config-lint.md para cada chequeo y su arreglo), 0 cuando el chequeo pasó.",
    &[TARGET, Label::one_of("check", &CHECKS)],
    Scope::Server,
)
.when(
    "for the checks that apply to the server's role and settings",
    "para los chequeos que aplican al rol y los parámetros del servidor",
);

pub const FAMILIES: &[Family] = &[CONFIG_ISSUE];

/// `pgrepl_config_issue` of every target, each judged against its
/// cluster in `clusters`.
pub fn encode(
    snaps: &[Arc<TargetSnapshot>],
    clusters: &[ClusterView],
    enc: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
    let cluster_of = |s: &TargetSnapshot| {
        clusters
            .iter()
            .find(|c| !c.name.is_empty() && Some(&c.name) == s.cluster.as_ref())
    };
    let rows: Vec<(&str, Vec<(Check, bool)>)> = snaps
        .iter()
        .map(|s| (s.name.as_str(), evaluate(s, cluster_of(s))))
        .collect();
    emit(
        enc,
        &CONFIG_ISSUE,
        rows.iter().flat_map(|(t, checks)| {
            checks.iter().map(move |(check, found)| {
                ([("target", *t), ("check", check.as_str())], flag(*found))
            })
        }),
    )
}
