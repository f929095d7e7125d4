//! The cluster view as families (`pgrepl_cluster_*`): what
//! `crate::model::cluster` judged across the members of each named
//! cluster, rendered for `/metrics` (never for `/probe`, which shows one
//! member).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use crate::family::{emit, flag, state_set, Family, Label, Scope, CLUSTER, TARGET};
use crate::model::cluster::ClusterView;
use crate::model::role::Role;

const CLUSTER_STANDBY: &[Label] = &[
    CLUSTER,
    Label::text(
        "standby",
        "an expected standby: from `expected_standbys`, else every member but the primary",
    ),
];

pub const CLUSTER_PRIMARIES: Family = Family::gauge(
    "pgrepl_cluster_primaries",
    "Reachable members of the cluster that are not in recovery; more than 1 is split brain, 0 means no primary.",
    "Miembros alcanzables del clúster que no están en recuperación; más de 1 es split brain, 0 significa sin principal.",
    &[CLUSTER],
    Scope::Cluster,
);

pub const CLUSTER_MEMBERS: Family = Family::gauge(
    "pgrepl_cluster_members",
    "Targets configured in the cluster.",
    "Targets configurados en el clúster.",
    &[CLUSTER],
    Scope::Cluster,
);

pub const CLUSTER_MEMBERS_UP: Family = Family::gauge(
    "pgrepl_cluster_members_up",
    "Members of the cluster whose last collection succeeded.",
    "Miembros del clúster cuya última recolección funcionó.",
    &[CLUSTER],
    Scope::Cluster,
);

pub const CLUSTER_MEMBER_STATE: Family = Family::gauge(
    "pgrepl_cluster_member_state",
    "Role of each configured member as the cluster view sees it: primary, standby or down (one series per state, 1 for the current one); a member that stops answering reads down, never vanishes.",
    "Rol de cada miembro configurado según la vista de clúster: primary, standby o down (una serie por estado, 1 para el actual); un miembro que deja de responder marca down, nunca desaparece.",
    &[CLUSTER, TARGET, Label::one_of("state", &Role::NAMES)],
    Scope::Cluster,
);

pub const CLUSTER_EXPECTED_STANDBY_CONNECTED: Family = Family::gauge(
    "pgrepl_cluster_expected_standby_connected",
    "1 when an expected standby streams from the primary, directly or through a chain of cascading standbys that reaches it; 0 when it is missing, not streaming or down.",
    "1 cuando una réplica esperada recibe el stream del principal, directamente o por una cadena de réplicas en cascada que llega a él; 0 cuando falta, no recibe o está caída.",
    CLUSTER_STANDBY,
    Scope::Cluster,
)
.when(
    "for every expected standby, except one that answers but whose streaming the monitoring role may not see (pgrepl_privilege_missing{privilege=\"pg_read_all_stats\"} 1 on it or its upstream): cannot see is never 0",
    "para cada réplica esperada, salvo una que responde pero cuyo stream el rol de monitoreo no puede ver (pgrepl_privilege_missing{privilege=\"pg_read_all_stats\"} 1 en ella o en su origen): no poder ver nunca es 0",
);

pub const CLUSTER_TIMELINE_MISMATCH: Family = Family::gauge(
    "pgrepl_cluster_timeline_mismatch",
    "1 when a standby follows another timeline than the cluster's primary; 0 when it follows the same or is down.",
    "1 cuando una réplica sigue otro timeline que el principal del clúster; 0 cuando sigue el mismo o está caída.",
    &[CLUSTER, TARGET],
    Scope::Cluster,
)
.when(
    "for every member that is not a primary, while the cluster has a primary",
    "para cada miembro que no es principal, mientras el clúster tiene principal",
);

pub const CLUSTER_STANDBY_LAG_BYTES: Family = Family::gauge(
    "pgrepl_cluster_standby_lag_bytes",
    "Primary's current WAL position minus the standby's replay position, measured from outside (also when the standby is not connected, and against the primary for a cascaded standby).",
    "Posición de WAL actual del principal menos la posición aplicada por la réplica, medida desde fuera (también cuando la réplica no está conectada, y contra el principal en una réplica en cascada).",
    &[CLUSTER, TARGET],
    Scope::Cluster,
)
.when(
    "for every standby that answers, while the cluster has a primary (a member that is down reads down in pgrepl_cluster_member_state instead)",
    "para cada réplica que responde, mientras el clúster tiene principal (un miembro caído marca down en pgrepl_cluster_member_state)",
);

pub const FAMILIES: &[Family] = &[
    CLUSTER_PRIMARIES,
    CLUSTER_MEMBERS,
    CLUSTER_MEMBERS_UP,
    CLUSTER_MEMBER_STATE,
    CLUSTER_EXPECTED_STANDBY_CONNECTED,
    CLUSTER_TIMELINE_MISMATCH,
    CLUSTER_STANDBY_LAG_BYTES,
];

pub fn encode(clusters: &[ClusterView], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let named = || clusters.iter().filter(|c| !c.name.is_empty());
    emit(
        enc,
        &CLUSTER_PRIMARIES,
        named().map(|c| ([("cluster", c.name.as_str())], c.primaries.len() as f64)),
    )?;
    emit(
        enc,
        &CLUSTER_MEMBERS,
        named().map(|c| ([("cluster", c.name.as_str())], c.members.len() as f64)),
    )?;
    emit(
        enc,
        &CLUSTER_MEMBERS_UP,
        named().map(|c| ([("cluster", c.name.as_str())], c.members_up as f64)),
    )?;
    emit(
        enc,
        &CLUSTER_MEMBER_STATE,
        named().flat_map(|c| {
            c.members.iter().flat_map(move |m| {
                state_set(&Role::NAMES, Some(m.role.as_str())).map(move |(state, v)| {
                    (
                        [
                            ("cluster", c.name.as_str()),
                            ("target", m.target.as_str()),
                            ("state", state),
                        ],
                        v,
                    )
                })
            })
        }),
    )?;
    emit(
        enc,
        &CLUSTER_EXPECTED_STANDBY_CONNECTED,
        named().flat_map(|c| {
            c.expected_standbys.iter().filter_map(move |e| {
                Some((
                    [("cluster", c.name.as_str()), ("standby", e.name.as_str())],
                    flag(e.connected?),
                ))
            })
        }),
    )?;
    emit(
        enc,
        &CLUSTER_TIMELINE_MISMATCH,
        named().filter(|c| !c.primaries.is_empty()).flat_map(|c| {
            c.members
                .iter()
                .filter(|m| m.role != Role::Primary && !m.foreign)
                .map(move |m| {
                    (
                        [("cluster", c.name.as_str()), ("target", m.target.as_str())],
                        flag(m.timeline_mismatch),
                    )
                })
        }),
    )?;
    emit(
        enc,
        &CLUSTER_STANDBY_LAG_BYTES,
        named().flat_map(|c| {
            c.members.iter().filter_map(move |m| {
                Some((
                    [("cluster", c.name.as_str()), ("target", m.target.as_str())],
                    m.lag_bytes?,
                ))
            })
        }),
    )
}
