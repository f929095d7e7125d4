// Grafana dashboards: an overview of every monitored server and a
// drill-down into one standby, one file each (common.libsonnet holds what
// they share). Stat panels colour at the alert thresholds of _config, and
// panels that belong to an alert link to its runbook.
{
  grafanaDashboards+:: {
    local c = $._config,
    'pg-replication-overview.json': (import 'overview.libsonnet')(c),
    'pg-replication-standby.json': (import 'standby.libsonnet')(c),
  },
}
