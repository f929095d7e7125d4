// What the dashboards share: the panel library bound to _config, label
// filters, value mappings, runbook links and query helpers.
local u = import '../lib/utils.libsonnet';
local grafana = import '../lib/grafana.libsonnet';

function(c) {
  local g = grafana.new(c),
  local row = g.row,
  local at = g.at,
  local target = g.target,
  local steps = g.steps,
  local stat = g.stat,
  local timeseries = g.timeseries,
  local stateTimeline = g.stateTimeline,
  local table = g.table,
  local ov = g.ov,

  local runbook(alerts) = [
    { title: 'Runbook: ' + a, url: u.runbook(c, a), targetBlank: true }
    for a in alerts
  ],
  // The runbooks page itself: the pattern without the alert name.
  local runbooksURL = std.rstripChars(c.runbookURLPattern % '', '#'),

  // by (...) lists keep the cluster and group labels.
  local by(labels) = u.by(c, labels),

  // Label filters. The selector of the exporter's series, the cluster
  // label's variable (when configured), then the dashboard's own.
  local keepVar = if c.clusterLabel != '' then ['%s=~"$%s"' % [c.clusterLabel, c.clusterLabel]] else [],
  local filter(parts) = std.join(', ', std.filter(function(p) p != '', [c.pgreplSelector] + keepVar + parts)),
  local G = filter(['cluster=~"$cluster"', 'target=~"$target"']),
  local FC = filter(['cluster=~"$cluster"']),
  local E = filter([]),  // exporter-wide series (no target label)

  local MIB = 1024 * 1024,

  local ROLE_MAP = g.valueMap([[0, 'primary', 'green'], [1, 'standby', 'blue'], [2, 'down', 'red']]),
  local UP_MAP = g.valueMap([[0, 'down', 'red'], [1, 'up', 'green']]),
  local ACTIVE_MAP = g.valueMap([[0, 'inactive', 'orange'], [1, 'active', 'green']]),
  local PAUSED_MAP = g.valueMap([[0, 'replaying', 'green'], [1, 'paused', 'orange']]),
  local YES_NO_MAP = g.valueMap([[0, 'no', 'blue'], [1, 'yes', 'green']]),
  local RELOAD_MAP = g.valueMap([[0, 'failed', 'red'], [1, 'ok', 'green']]),
  local APPLY_DELAY_MAP = g.valueMap([[0, 'applying', 'green'], [1, 'waiting on delay', 'blue']]),
  local WAL_STATUS_MAP = g.valueMap([
    [0, 'reserved', 'green'],
    [1, 'extended', 'yellow'],
    [2, 'unreserved', 'orange'],
    [3, 'lost', 'red'],
  ]),
  local SYNC_MAP = g.valueMap([
    [0, 'async', 'blue'],
    [1, 'potential', 'yellow'],
    [2, 'sync', 'green'],
    [3, 'quorum', 'green'],
  ]),
  local RECEIVER_MAP = g.valueMap([
    [0, 'stopped', 'red'],
    [1, 'starting', 'yellow'],
    [2, 'streaming', 'green'],
    [3, 'waiting', 'orange'],
    [4, 'restarting', 'orange'],
    [5, 'stopping', 'orange'],
  ]),
  local STATE_MAP = g.valueMap([
    [0, 'startup', 'yellow'],
    [1, 'catchup', 'orange'],
    [2, 'streaming', 'green'],
    [3, 'backup', 'purple'],
    [4, 'stopping', 'orange'],
  ]),

  // A state set as one number per series: the index of the state that is
  // 1. The first state has code 0 and needs no term, so it is the base of
  // the sum (`* 0`), which keeps series whose state is the first one.
  local stateCode(metric, label, states, selector, agg='sum without (%s)' % label) =
    std.join(' + ', [
      '%s (%s{%s="%s", %s}) * 0' % [agg, metric, label, states[0], selector],
    ] + [
      '%d * %s (%s{%s="%s", %s})' % [i, agg, metric, label, states[i], selector]
      for i in std.range(1, std.length(states) - 1)
    ]),

  // Replay delay beyond the configured recovery_min_apply_delay: what
  // PgReplStandbyReplayDelayHigh compares with its thresholds. A standby
  // delayed on purpose reads ~0 here; a broken one grows.
  local beyondDelay(s) =
    'pgrepl_replay_delay_seconds{%s} - (pgrepl_recovery_min_apply_delay_seconds{%s} or 0 * pgrepl_replay_delay_seconds{%s})'
    % [s, s, s],

  local roleExpr(s) =
    'max by (%s) (pgrepl_in_recovery{%s}) or (max by (%s) (pgrepl_up{%s}) == 0) + 2'
    % [by(['target']), s, by(['target']), s],

  local clusterVars(metricForCluster) =
    (if c.clusterLabel != '' then [
       g.queryVar(c.clusterLabel, c.clusterLabel, 'label_values(pgrepl_up{%s}, %s)' % [c.pgreplSelector, c.clusterLabel], allValue='.*'),
     ] else [])
    + [g.queryVar('cluster', 'Cluster', 'label_values(%s{%s}, cluster)' % [metricForCluster, filter([])], allValue='.*')],

  local alertsAnnotation = {
    name: 'Firing replication alerts',
    datasource: g.datasource,
    enable: true,
    hide: false,
    iconColor: 'red',
    expr: 'ALERTS{%s}' % std.join(', ', ['alertstate="firing"', 'alertname=~"PgRepl.*"'] + keepVar),
    step: '60s',
    titleFormat: '{{alertname}}',
    textFormat: '{{severity}} {{target}}',
    tagKeys: 'alertname,severity,target',
    useValueForTime: false,
  },

  local dashboardsLink(title) = {
    title: title,
    type: 'dashboards',
    tags: c.dashboardTags,
    asDropdown: false,
    includeVars: true,
    keepTime: true,
    targetBlank: false,
    icon: 'external link',
    tooltip: '',
    url: '',
  },

  local standbyLink =
    '/d/%s/postgresql-replication-standby?${%s:queryparam}%s&${cluster:queryparam}' % [
      c.dashboardUIDs.standby,
      c.datasourceName,
      if c.clusterLabel != '' then '&${%s:queryparam}' % c.clusterLabel else '',
    ]
    + '&var-primary=${__field.labels.target}&var-standby=${__field.labels.application_name}&${__url_time_range}',

  // Exported for the dashboard files.
  g:: g,
  row:: row,
  at:: at,
  target:: target,
  steps:: steps,
  stat:: stat,
  timeseries:: timeseries,
  stateTimeline:: stateTimeline,
  table:: table,
  ov:: ov,
  runbook:: runbook,
  runbooksURL:: runbooksURL,
  by:: by,
  keepVar:: keepVar,
  filter:: filter,
  G:: G,
  FC:: FC,
  E:: E,
  MIB:: MIB,
  ROLE_MAP:: ROLE_MAP,
  UP_MAP:: UP_MAP,
  ACTIVE_MAP:: ACTIVE_MAP,
  PAUSED_MAP:: PAUSED_MAP,
  YES_NO_MAP:: YES_NO_MAP,
  RELOAD_MAP:: RELOAD_MAP,
  APPLY_DELAY_MAP:: APPLY_DELAY_MAP,
  WAL_STATUS_MAP:: WAL_STATUS_MAP,
  SYNC_MAP:: SYNC_MAP,
  RECEIVER_MAP:: RECEIVER_MAP,
  STATE_MAP:: STATE_MAP,
  stateCode:: stateCode,
  beyondDelay:: beyondDelay,
  roleExpr:: roleExpr,
  clusterVars:: clusterVars,
  alertsAnnotation:: alertsAnnotation,
  dashboardsLink:: dashboardsLink,
  standbyLink:: standbyLink,
}
