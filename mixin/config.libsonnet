// Everything a user may change, in one place. Override it from your own
// jsonnet, for example:
//
//   (import 'pg-replication-mixin/mixin.libsonnet') + {
//     _config+:: {
//       pgreplSelector: 'job="pgrepl"',
//       clusterLabel: 'k8s_cluster',
//       lagBytesWarning: 128 * 1024 * 1024,
//     },
//   }
//
// The defaults render exactly what the repository ships in alerts/,
// dashboards/ and deploy/kubernetes/ (`make mixin`).
local defaults = {
  // ---------------------------------------------------------------------
  // Selecting and grouping series
  // ---------------------------------------------------------------------
  // Label matchers (without braces) that select the exporter's series,
  // including its `up` series. Every rule and dashboard query uses it.
  pgreplSelector: 'job="pg_replication_exporter"',

  // The label that tells your Kubernetes or data-centre clusters apart
  // when one Prometheus, Thanos or Mimir holds several of them, e.g.
  // 'k8s_cluster'. Empty: a single cluster. Every join and aggregation of
  // the rules keeps it, and the dashboards get a variable for it. It
  // cannot be `cluster` or `target`: the exporter uses those for the
  // PostgreSQL cluster and server.
  clusterLabel: '',

  // More labels every join and aggregation keeps (e.g. ['region']).
  groupLabels: [],

  // ---------------------------------------------------------------------
  // Links
  // ---------------------------------------------------------------------
  // `%s` is replaced by the alert name in lower case.
  runbookURLPattern: 'https://github.com/pg-replication-exporter/pg_replication_exporter/blob/main/docs/runbooks.md#%s',

  // ---------------------------------------------------------------------
  // Alert thresholds and durations (alerts/README.md explains the defaults)
  // ---------------------------------------------------------------------
  // PgReplTargetDown
  targetDownFor: '1m',

  // PgReplCollectionStale: the last successful collection is older than
  // factor x the collection interval (at least minSeconds).
  collectionStaleFactor: 3,
  collectionStaleMinSeconds: 30,
  collectionStaleFor: '2m',

  // PgReplConfigReloadFailed
  configReloadFailedFor: '10m',

  // PgReplCollectorRestarted
  collectorRestartsWindow: '15m',

  // PgReplMissingPrivileges: the monitoring role lacks a privilege
  // (pgrepl_privilege_missing == 1) for this long.
  missingPrivilegesFor: '15m',

  // PgReplStandbyLagBytesHigh (replay lag seen from the primary)
  lagBytesWarning: 256 * 1024 * 1024,
  lagBytesCritical: 1024 * 1024 * 1024,
  lagBytesFor: '5m',

  // PgReplStandbyReplayDelayHigh (seconds beyond recovery_min_apply_delay)
  replayDelayWarningSeconds: 300,
  replayDelayCriticalSeconds: 1800,
  replayDelayFor: '5m',

  // PgReplStandbyDisconnected: how long a server remembers its standbys.
  standbyMemory: '1d',
  standbyDisconnectedFor: '5m',

  // PgReplWalReceiverNotStreaming
  walReceiverMessageAgeSeconds: 120,
  walReceiverWarningFor: '5m',
  walReceiverCriticalFor: '30m',

  // PgReplSlotInactive
  slotInactiveFor: '30m',

  // PgReplSlotRetainedWalHigh
  slotRetainedWarningBytes: 10 * 1024 * 1024 * 1024,
  slotRetainedCriticalBytes: 50 * 1024 * 1024 * 1024,
  slotKeepRatioWarning: 0.5,  // share of max_slot_wal_keep_size
  slotKeepRatioCritical: 0.8,
  slotSafeWalWindow: '1h',  // predict_linear window of safe_wal_size
  slotSafeWalWarningHorizonSeconds: 6 * 3600,
  slotSafeWalCriticalHorizonSeconds: 3600,
  slotRetainedWarningFor: '15m',
  slotRetainedCriticalFor: '5m',

  // PgReplSlotWalAtRisk, PgReplSlotLost, PgReplFailoverSlotNotSynced
  slotWalAtRiskFor: '1m',
  slotLostFor: '1m',
  failoverSlotNotSyncedFor: '10m',

  // PgReplSyncStandbyMissing
  syncStandbyMissingFor: '1m',

  // PgReplCommitsBlockedOnSyncStandby: age of the oldest commit waiting
  // for a synchronous standby.
  commitsBlockedSeconds: 10,
  commitsBlockedFor: '1m',

  // PgReplReplayPaused
  replayPausedFor: '15m',

  // PgReplArchivingFailing
  archiveFailuresWindow: '10m',
  archivePendingWarning: 50,
  archivePendingCritical: 500,
  archiveAgeWarningSeconds: 1800,
  archiveAgeCriticalSeconds: 7200,
  archiveWarningFor: '15m',
  archiveCriticalFor: '5m',

  // Topology
  splitBrainFor: '1m',
  noPrimaryFor: '2m',
  primarySeenWithin: '1d',  // PgReplNoPrimary: only systems with a primary seen this recently
  timelineMismatchFor: '5m',
  timelineChangedWindow: '15m',

  // ---------------------------------------------------------------------
  // Dashboards
  // ---------------------------------------------------------------------
  dashboardTags: ['postgresql', 'replication', 'pg-replication'],
  dashboardTimezone: 'browser',
  dashboardRefresh: '30s',
  dashboardTimeFrom: 'now-3h',
  // Name of the data source template variable.
  datasourceName: 'datasource',
  dashboardUIDs: {
    overview: 'pgrepl-overview',
    standby: 'pgrepl-standby',
  },
};

// A misspelt type or duration is named here, not deep inside a rule.
local durationKey(k) = std.length(std.filter(function(suffix) std.endsWith(k, suffix), ['For', 'Window', 'Memory', 'Within'])) > 0;
local isDuration(d) =
  std.isString(d) && std.length(d) >= 2
  && std.member(['s', 'm', 'h', 'd', 'w'], d[std.length(d) - 1])
  && std.foldl(function(acc, ch) std.strReplace(acc, ch, ''), std.stringChars('0123456789'), d[0:std.length(d) - 1]) == '';
local problems(c) =
  [
    '_config.%s must be a %s, not %s' % [k, std.type(defaults[k]), std.type(c[k])]
    for k in std.objectFields(defaults)
    if std.type(c[k]) != std.type(defaults[k])
  ] + [
    '_config.%s must be a duration such as "5m" (a number and one of s, m, h, d, w), not "%s"' % [k, c[k]]
    for k in std.objectFields(defaults)
    if durationKey(k) && std.isString(c[k]) && !isDuration(c[k])
  ];

{
  _config+:: defaults,
  // Checked when any part of the mixin is read.
  assert std.length(problems(self._config)) == 0 : std.join('; ', problems(self._config)),
}
