// Recording rules, in one group: the server identities and roles here,
// WAL rates, slot runways and catch-up times in runway.libsonnet, the
// replica freshness SLO in freshness.libsonnet. A rule may read the rules
// above it: Prometheus evaluates a group's rules in order.
local u = import '../lib/utils.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local p = {
      server: u.server(c),
      info: u.sel(c, 'pgrepl_server_info'),
      rec: u.sel(c, 'pgrepl_in_recovery'),
      standbys: u.sel(c, 'pgrepl_standbys'),
    },
    groups+: [
      {
        name: 'pg-replication.records',
        rules: [
          {
            yamlComment:: |||
              One series per reachable server (its collection succeeded) with the
              key that ties a primary to its physical standbys: the
              system_identifier, identical on a primary and every standby created
              from it with pg_basebackup. `cluster` is PostgreSQL's cluster_name,
              or the system_identifier when cluster_name is empty.
            |||,
            record: 'pgrepl:server:info',
            expr: |||
              label_replace(
                label_replace(
                  max without (version) (%(info)s),
                  "cluster", "$1", "system_identifier", "(.*)"
                ),
                "cluster", "$1", "cluster_name", "(.+)"
              )
            ||| % p,
          },
          {
            yamlComment:: 'Reachable servers that are not in recovery (pg_is_in_recovery() = false).',
            record: 'pgrepl:primary:info',
            expr: 'pgrepl:server:info and on (%(server)s) (%(rec)s == 0)' % p,
          },
          {
            yamlComment:: 'Reachable servers in recovery (standbys).',
            record: 'pgrepl:standby:info',
            expr: 'pgrepl:server:info and on (%(server)s) (%(rec)s == 1)' % p,
          },
          {
            yamlComment:: |||
              Connected walsenders with the role of the server as a label. A
              promotion or a demotion starts a new series, so "fewer standbys than
              before" only compares a server with itself in the same role.
            |||,
            record: 'pgrepl:standbys:by_role',
            expr: |||
              %(standbys)s
              + on (%(server)s) group_left (role)
              (
                  label_replace(0 * (%(rec)s == 0), "role", "primary", "", "")
                or
                  label_replace(0 * (%(rec)s == 1), "role", "standby", "", "")
              )
            ||| % p,
          },
        ]
        + (import 'runway.libsonnet')(c)
        + (import 'freshness.libsonnet')(c),
      },
    ],
  },
}
