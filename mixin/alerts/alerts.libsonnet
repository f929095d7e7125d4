// Alerting rules, one file per part of replication (rendered in this
// order into one group). Every threshold and `for:` comes from _config
// (config.libsonnet); descriptions state the configured values.
{
  prometheusAlerts+:: {
    local c = $._config,
    local standby = (import 'standby.libsonnet')(c),

    groups+: [
      {
        name: 'pg-replication.alerts',
        rules:
          (import 'health.libsonnet')(c)
          + standby.rules
          + (import 'freshness.libsonnet')(c)
          + (import 'slots.libsonnet')(c)
          + (import 'sync.libsonnet')(c)
          + standby.paused
          + (import 'archiving.libsonnet')(c)
          + (import 'topology.libsonnet')(c),
      },
    ],
  },
}
