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

  // PgReplStandbyLagBytesHigh (replay lag seen from the primary). A
  // warning: what pages for a standby's lag is the freshness SLO below.
  lagBytesWarning: 256 * 1024 * 1024,
  lagBytesFor: '5m',
  // A walsender in state catchup (a standby that has just attached and is
  // replaying what it missed) is not judged on its lag for this long; nor
  // does a standby seen for less than this long count against the
  // freshness SLO before it has been fresh once.
  catchupTimeout: '15m',

  // PgReplStandbyReplayDelayHigh (seconds beyond recovery_min_apply_delay).
  // A warning, as PgReplStandbyLagBytesHigh.
  replayDelayWarningSeconds: 300,
  replayDelayFor: '5m',

  // PgReplStandbyFallingBehind: the replay lag seen from the primary grows
  // (its 5-minute derivative stays above 0) for this long, above a floor.
  standbyFallingBehindMinBytes: 16 * 1024 * 1024,
  standbyFallingBehindFor: '15m',

  // Replica freshness SLO (PgReplFreshnessBudgetBurn). A standby is fresh
  // while its heartbeat lag (where a heartbeat is configured and its writer
  // writes), or else its replay delay, beyond its recovery_min_apply_delay
  // is at most this many seconds and its target is up; down, unreachable or
  // unknown is not fresh. The objective is over 30 days; the burn rates of
  // the Google SRE workbook (page at 14.4x over 1h and 5m and at 6x over 6h
  // and 30m, ticket at 1x over 3d and 6h) assume that period.
  freshnessThresholdSeconds: 60,
  freshnessObjective: 0.999,

  // PgReplHeartbeatLagHigh: age of the last heartbeat a standby replayed,
  // beyond its recovery_min_apply_delay (needs [clusters.NAME.heartbeat]).
  heartbeatLagWarningSeconds: 300,
  heartbeatLagCriticalSeconds: 1800,
  heartbeatLagFor: '5m',
  // PgReplHeartbeatWriterFailing: the writer refuses its table, has never
  // written, or last wrote longer ago than this (the writer's interval is
  // 1 s by default; raise it with a long interval).
  heartbeatWriterStaleSeconds: 60,
  heartbeatWriterFailingFor: '2m',
  // PgReplHeartbeatUnavailable: a standby of a cluster with a heartbeat
  // reports no heartbeat lag (rejected, or no row read).
  heartbeatUnavailableFor: '5m',

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
  slotRetainedWarningFor: '15m',
  slotRetainedCriticalFor: '5m',

  // PgReplSlotWillBeLost: the slot's safe_wal_size runs out within this
  // many seconds at the current rate: critical at the 5-minute rates, at
  // once ('0s': no `for:`, a runway of minutes cannot wait), warning at
  // the 1-hour rates.
  slotRunwayCriticalSeconds: 1800,
  slotRunwayCriticalFor: '0s',
  slotRunwayWarningSeconds: 6 * 3600,
  slotRunwayWarningFor: '15m',

  // PgReplXminHeldBack: the xmin (or catalog_xmin) horizon held back, in
  // transactions. PostgreSQL forces anti-wraparound vacuums from
  // autovacuum_freeze_max_age (200 million by default) and stops assigning
  // transaction IDs about 2.1 billion transactions behind the oldest xmin.
  xminAgeWarning: 500000000,
  xminAgeCritical: 1200000000,
  xminAgeWarningFor: '15m',
  xminAgeCriticalFor: '5m',
  // The families the alert reads, each labelled with what holds the
  // horizon (a slot, or a standby's walsender): a family added by a later
  // exporter (the backend_xmin of standbys without a slot that send
  // hot_standby_feedback) joins this list without renaming the alert.
  xminAgeFamilies: ['pgrepl_slot_xmin_age_xids'],

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
local durationKey(k) = std.length(std.filter(function(suffix) std.endsWith(k, suffix), ['For', 'Window', 'Memory', 'Within', 'Timeout'])) > 0;
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
  ] + [
    '_config.freshnessObjective must be a share between 0 and 1 such as 0.999, not %g' % c.freshnessObjective
    for _ in [1]
    if std.isNumber(c.freshnessObjective) && !(c.freshnessObjective > 0 && c.freshnessObjective < 1)
  ] + [
    '_config.xminAgeFamilies must be a non-empty list of metric names, not %s' % std.manifestJsonMinified(c.xminAgeFamilies)
    for _ in [1]
    if std.isArray(c.xminAgeFamilies)
       && (std.length(c.xminAgeFamilies) == 0 || std.length([f for f in c.xminAgeFamilies if !std.isString(f) || f == '']) > 0)
  ];

{
  _config+:: defaults,
  // Checked when any part of the mixin is read.
  assert std.length(problems(self._config)) == 0 : std.join('; ', problems(self._config)),
}
