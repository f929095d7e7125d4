// Recording rules of the replica freshness SLO: a sample per standby and
// evaluation, 1 when fresh and 0 when not, and its error ratio over the
// windows of the Google SRE workbook's multi-window burn-rate alerts
// (alerts/freshness.libsonnet).
//
// What is a standby. Every target that is a standby now or was one within
// standbyMemory (last_over_time of pgrepl_in_recovery: a target that is
// down, or an exporter Prometheus cannot scrape, keeps its role) while
// Prometheus still has its scrape target (`up` exists: a Kubernetes pod
// deleted for good is no standby any more). And, from the exporter's
// cluster view, every expected standby that is not measured as a target:
// one named by application_name only, and a configured member that is not
// a standby now (down since before the memory, or never seen).
//
// Fresh: its target is up (pgrepl_up 1) and its heartbeat lag (where a
// heartbeat is configured and its writer writes), or else its replay delay,
// beyond its recovery_min_apply_delay, is at most freshnessThresholdSeconds.
// Not fresh: anything else, unknown included: a down target, an exporter
// that cannot be scraped, a delay the exporter cannot tell (absent), a
// cluster-view standby that is not connected. An absent series is never
// counted as fresh.
//
// Catching up: a target seen as a standby for less than catchupTimeout that
// has not been fresh yet (a new standby replaying what it missed) is left
// out until it is fresh or the timeout passes, so attaching a standby does
// not page.
local u = import '../lib/utils.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(c)
  local server = u.server(c);
  local sel(m, extra='') = u.sel(c, m, extra);
  local windows = ['5m', '30m', '1h', '6h', '3d'];
  local lag = |||
    (
      %(heartbeat)s
      unless on (%(server)s)
      (
        %(failing)s
      )
    )
    or
    %(delay)s
  ||| % {
    heartbeat: sel('pgrepl_heartbeat_lag_seconds'),
    server: server,
    failing: std.rstripChars(promql.indent(promql.heartbeatWriterFailingTargets(c), 4), '\n'),
    delay: sel('pgrepl_replay_delay_seconds'),
  };

  [
    {
      yamlComment:: |||
        How old the data of each standby whose target is up is, in seconds: the
        heartbeat lag where a heartbeat is configured and its writer writes,
        else the replay delay; beyond the configured recovery_min_apply_delay.
        Absent when neither is known.
      |||,
      record: 'pgrepl:standby_staleness:seconds',
      expr: |||
        clamp_min(
          (
            %(lag)s
          )
          - %(min)s,
          0
        )
        and on (%(server)s) (%(up)s == 1)
      ||| % {
        lag: std.rstripChars(promql.indent(lag, 4), '\n'),
        server: server,
        min: sel('pgrepl_recovery_min_apply_delay_seconds'),
        up: sel('pgrepl_up'),
      },
    },
    {
      yamlComment:: |||
        The freshness SLI of each standby target (see mixin/rules/freshness.libsonnet):
        1 when fresh; 0 when it is a standby (or was one within %(memory)s,
        while Prometheus still scrapes or tries its exporter) that is not; left
        out while it catches up for the first time (seen for less than %(catchup)s
        and never fresh within %(memory)s).
      ||| % { memory: c.standbyMemory, catchup: c.catchupTimeout },
      record: 'pgrepl:standby_freshness:sli',
      expr: |||
        (0 * (pgrepl:standby_staleness:seconds <= %(threshold)s) + 1)
        or
        (
          0 * (last_over_time(%(rec)s[%(memory)s]) == 1)
          and on (%(byScrape)s) %(up)s
          and on (%(server)s)
          (
            last_over_time(%(rec)s[%(memory)s] offset %(catchup)s)
            or
            (max_over_time(pgrepl:standby_freshness:sli{target!=""}[%(memory)s]) == 1)
          )
        )
      ||| % {
        threshold: u.num(c.freshnessThresholdSeconds),
        rec: sel('pgrepl_in_recovery'),
        memory: c.standbyMemory,
        catchup: c.catchupTimeout,
        byScrape: u.by(c, ['instance', 'job']),
        up: u.up(c),
        server: server,
      },
    },
    {
      yamlComment:: |||
        The same SLI for the expected standbys of the exporter's cluster view
        that are not measured as targets (label view="cluster"): one named by
        application_name only, 1 while it streams from the primary and 0 when
        not; a configured member that is not measured, 0 while it is not
        connected.
      |||,
      record: 'pgrepl:standby_freshness:sli',
      expr: |||
        (
          %(expected)s
          unless on (%(byCluster)s, standby)
          label_replace(%(members)s, "standby", "$1", "target", "(.*)")
        )
        or
        (
          (%(expected)s == 0)
          unless on (%(byScrape)s, standby)
          label_replace(pgrepl:standby_freshness:sli{target!=""}, "standby", "$1", "target", "(.*)")
        )
      ||| % {
        expected: sel('pgrepl_cluster_expected_standby_connected'),
        members: sel('pgrepl_cluster_member_state'),
        byCluster: u.by(c, ['instance', 'job', 'cluster']),
        byScrape: u.by(c, ['instance', 'job']),
      },
      labels: { view: 'cluster' },
    },
  ]
  + [
    {
      record: 'pgrepl:standby_freshness:error_ratio' + w,
      expr: '1 - avg_over_time(pgrepl:standby_freshness:sli[%s])' % w,
    } + (if w == '5m' then {
           yamlComment:: |||
             Share of the evaluations of the last 5m / 30m / 1h / 6h / 3d in which a
             standby was not fresh.
           |||,
         } else {})
    for w in windows
  ]
  + [
    {
      yamlComment:: |||
        Over the SLO's 30 days, from the hourly ratios (720 lookups instead of
        every sample of 30 days): the error budget left is
        1 - pgrepl:standby_freshness:error_ratio30d / (1 - %(objective)s).
      ||| % { objective: u.num(c.freshnessObjective) },
      record: 'pgrepl:standby_freshness:error_ratio30d',
      expr: 'avg_over_time(pgrepl:standby_freshness:error_ratio1h[30d:1h])',
    },
  ]
