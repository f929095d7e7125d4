// pg_replication_exporter monitoring mixin: alerts, recording rules and
// Grafana dashboards for PostgreSQL physical streaming replication.
//
//   prometheusAlerts   the alerting rules (one group)
//   prometheusRules    the recording rules the alerts and dashboards use
//   grafanaDashboards  {'pg-replication-overview.json': ..., 'pg-replication-standby.json': ...}
//
// Configure it through _config (config.libsonnet lists every key).
(import 'config.libsonnet')
+ (import 'rules/rules.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
