// The overview dashboard: every monitored server, topology, lag, synchronous
// replication, slots, WAL archiving and exporter health.
local u = import '../lib/utils.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(c)
  local d = (import 'common.libsonnet')(c);
  local g = d.g, row = d.row, at = d.at, target = d.target, steps = d.steps, stat = d.stat,
        timeseries = d.timeseries, stateTimeline = d.stateTimeline, table = d.table, ov = d.ov,
        runbook = d.runbook, runbooksURL = d.runbooksURL, by = d.by, G = d.G, FC = d.FC, E = d.E,
        ROLE_MAP = d.ROLE_MAP, UP_MAP = d.UP_MAP, ACTIVE_MAP = d.ACTIVE_MAP,
        YES_NO_MAP = d.YES_NO_MAP, RELOAD_MAP = d.RELOAD_MAP,
        APPLY_DELAY_MAP = d.APPLY_DELAY_MAP, WAL_STATUS_MAP = d.WAL_STATUS_MAP,
        SYNC_MAP = d.SYNC_MAP, RECEIVER_MAP = d.RECEIVER_MAP, STATE_MAP = d.STATE_MAP,
        stateCode = d.stateCode, beyondDelay = d.beyondDelay, roleExpr = d.roleExpr,
        clusterVars = d.clusterVars, alertsAnnotation = d.alertsAnnotation,
        dashboardsLink = d.dashboardsLink, standbyLink = d.standbyLink;

  local S = G + ', application_name=~"$standby"';
  // Freshness SLI series: a target's, or a cluster view's expected standby
  // (no target label), so not filtered on $target.
  local FS = FC;
  local budget = '(1 - %s)' % u.num(c.freshnessObjective);
  local lagBytes = timeseries(
    'Replay lag per standby (bytes)',
    "Primary's current WAL position minus the replay position of each connected standby "
    + '(pg_stat_replication). Click a series for the standby drill-down.',
    [target('pgrepl_standby_lag_bytes{stage="replay", %s}' % G, '{{target}} → {{application_name}}')],
    'bytes',
    runbook(['PgReplStandbyLagBytesHigh']),
    minimum=0,
    thresholds=steps([['green', null], ['orange', c.lagBytesWarning]]),
  ) { fieldConfig+: { defaults+: { links: [{ title: 'Standby drill-down', url: standbyLink }] } } };
  local lagSeconds = timeseries(
    'Replay lag per standby (seconds)',
    'replay_lag of pg_stat_replication: time between a commit on the primary and its '
    + 'replay on the standby. 0 when caught up; absent while it cannot be measured.',
    [target('pgrepl_standby_lag_seconds{stage="replay", %s}' % G, '{{target}} → {{application_name}}')],
    's',
    runbook(['PgReplStandbyReplayDelayHigh']),
    minimum=0,
  ) { fieldConfig+: { defaults+: { links: [{ title: 'Standby drill-down', url: standbyLink }] } } };

  local items = [
    // ------------------------------------------------------------ topology
    row('Topology'),
    at(stat(
      'Targets down',
      'Configured PostgreSQL servers whose last collection failed (pgrepl_up == 0).',
      'count(pgrepl_up{%s} == 0) or vector(0)' % G,
      'none',
      steps([['green', null], ['red', 1]]),
      runbook(['PgReplTargetDown']),
    ), 4, 4),
    at(stat(
      'Primaries per cluster',
      'Reachable members not in recovery, per configured cluster. 1 is healthy; '
      + '0 means no primary, more than 1 is split brain. Needs the cluster view.',
      'pgrepl_cluster_primaries{%s}' % FC,
      'none',
      steps([['red', null], ['green', 1], ['red', 2]]),
      runbook(['PgReplNoPrimary', 'PgReplSplitBrain']),
      legend='{{cluster}}',
    ), 5, 4),
    at(stat(
      'Members up per cluster',
      'Cluster members whose last collection succeeded. Needs the cluster view.',
      'pgrepl_cluster_members_up{%s}' % FC,
      'none',
      steps([['blue', null]]),
      legend='{{cluster}}',
      colorMode='value',
    ), 5, 4),
    at(stat(
      'Expected standbys missing',
      'Configured standbys not seen streaming from their primary. Needs the cluster view.',
      'count(pgrepl_cluster_expected_standby_connected{%s} == 0) or vector(0)' % FC,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplStandbyDisconnected']),
    ), 5, 4),
    at(stat(
      'Timeline mismatches',
      "Standbys on another timeline than their cluster's primary. Needs the cluster view.",
      'sum(pgrepl_cluster_timeline_mismatch{%s}) or vector(0)' % FC,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplTimelineMismatch']),
    ), 5, 4),

    at(table(
      'Servers',
      "One row per configured target: role (from pg_is_in_recovery(), 'down' when the "
      + 'exporter cannot reach it), timeline, server version, upstream of a standby '
      + '(sender_host:sender_port of its WAL receiver), WAL receiver status, connected '
      + 'standbys, synchronous standbys connected vs required, and the replay delay of a '
      + 'standby next to its configured recovery_min_apply_delay.',
      [
        target('max by (%s) (pgrepl_up{%s})' % [by(['target']), G], ref='A', table=true),
        target(roleExpr(G), ref='B', table=true),
        target('max by (%s) (pgrepl_timeline_id{%s})' % [by(['target']), G], ref='C', table=true),
        target('max by (%s) (pgrepl_server_info{%s})' % [by(['target', 'version']), G], ref='D', table=true),
        target('label_join(max by (%s) (pgrepl_wal_receiver_info{%s}), "upstream", ":", "sender_host", "sender_port")'
               % [by(['target', 'sender_host', 'sender_port']), G], ref='E', table=true),
        target(stateCode('pgrepl_wal_receiver_status', 'status',
                         ['stopped', 'starting', 'streaming', 'waiting', 'restarting', 'stopping'],
                         G, 'max by (%s)' % by(['target'])), ref='F', table=true),
        target('max by (%s) (pgrepl_standbys{%s})' % [by(['target']), G], ref='G', table=true),
        target('max by (%s) (pgrepl_standbys_sync{%s})' % [by(['target']), G], ref='H', table=true),
        target('max by (%s) (pgrepl_sync_standbys_required{%s})' % [by(['target']), G], ref='I', table=true),
        target('max by (%s) (pgrepl_replay_delay_seconds{%s})' % [by(['target']), G], ref='J', table=true),
        target('max by (%s) (pgrepl_recovery_min_apply_delay_seconds{%s})' % [by(['target']), G], ref='K', table=true),
      ],
      'none',
      exclude=['Value #D', 'Value #E', 'sender_host', 'sender_port'],
      rename={
        target: 'Target',
        'Value #A': 'Exporter',
        'Value #B': 'Role',
        'Value #C': 'Timeline',
        version: 'Version',
        upstream: 'Upstream',
        'Value #F': 'WAL receiver',
        'Value #G': 'Standbys connected',
        'Value #H': 'Sync standbys connected',
        'Value #I': 'Sync standbys required',
        'Value #J': 'Replay delay',
        'Value #K': 'recovery_min_apply_delay',
      },
      order=['target', 'Value #B', 'Value #A', 'Value #C', 'version', 'upstream',
             'Value #F', 'Value #J', 'Value #K', 'Value #G', 'Value #H', 'Value #I'],
      overrides=[
        ov('Role', g.pMappings(ROLE_MAP) + g.pCell('color-background')),
        ov('Exporter', g.pMappings(UP_MAP) + g.pCell('color-text')),
        ov('WAL receiver', g.pMappings(RECEIVER_MAP) + g.pCell('color-text')),
        ov('Replay delay', g.pUnit('s')),
        ov('recovery_min_apply_delay', g.pUnit('s')),
      ],
      links=runbook(['PgReplTargetDown', 'PgReplWalReceiverNotStreaming', 'PgReplSyncStandbyMissing']),
    ), 24, 8),

    at(stateTimeline(
      'Role over time',
      'primary / standby / down per target; a change is a promotion, a demotion or an outage.',
      roleExpr(G),
      '{{target}}',
      ROLE_MAP,
      runbook(['PgReplSplitBrain', 'PgReplNoPrimary']),
    ), 12, 7),
    at(timeseries(
      'Timeline per target',
      'Current timeline (pgrepl_timeline_id). A standby on another timeline than its '
      + 'primary does not replicate.',
      [target('pgrepl_timeline_id{%s}' % G, '{{target}}')],
      'none',
      runbook(['PgReplTimelineMismatch']),
      drawStyle='line',
    ), 12, 7),

    at(table(
      'Replication settings',
      'Settings that physical replication depends on, per target.',
      [
        target('max by (%s) (pgrepl_settings_info{%s})'
               % [by(['target', 'wal_level', 'synchronous_commit', 'synchronous_standby_names',
                      'hot_standby', 'hot_standby_feedback', 'archive_mode', 'wal_log_hints',
                      'data_checksums']), G], ref='A', table=true),
        target('max by (%s) (pgrepl_max_wal_senders{%s})' % [by(['target']), G], ref='B', table=true),
        target('max by (%s) (pgrepl_max_replication_slots{%s})' % [by(['target']), G], ref='C', table=true),
        target('max by (%s) (pgrepl_wal_keep_size_bytes{%s})' % [by(['target']), G], ref='D', table=true),
        target('max by (%s) (pgrepl_max_slot_wal_keep_size_bytes{%s})' % [by(['target']), G], ref='E', table=true),
        target('max by (%s) (pgrepl_max_wal_size_bytes{%s})' % [by(['target']), G], ref='F', table=true),
      ],
      'none',
      exclude=['Value #A'],
      rename={
        target: 'Target',
        'Value #B': 'max_wal_senders',
        'Value #C': 'max_replication_slots',
        'Value #D': 'wal_keep_size',
        'Value #E': 'max_slot_wal_keep_size',
        'Value #F': 'max_wal_size',
      },
      overrides=[
        ov('wal_keep_size', g.pUnit('bytes')),
        ov('max_slot_wal_keep_size', g.pUnit('bytes')),
        ov('max_wal_size', g.pUnit('bytes')),
      ],
    ), 16, 6),
    at(table(
      'Configuration issues',
      "Risky settings found by the exporter's checks (pgrepl_config_issue). Needs the "
      + 'cluster view.',
      [target('pgrepl_config_issue{%s} == 1' % G, ref='A', table=true)],
      'none',
      exclude=['Value', 'Value #A', '__name__', 'instance', 'job'],
      rename={ target: 'Target', check: 'Check' },
    ), 8, 6),
    at(timeseries(
      'Base backups in progress',
      'Share of pg_basebackup done (streamed / total). Only while a base backup runs.',
      [target('pgrepl_basebackup_streamed_bytes{%s} / pgrepl_basebackup_total_bytes{%s}' % [G, G],
              '{{target}} pid {{pid}}')],
      'percentunit',
      minimum=0,
    ), 24, 6),

    // ------------------------------------------------------------ freshness
    row('Replica freshness (SLO) and heartbeat'),
    at(stat(
      'Standbys not fresh',
      'Standbys whose freshness SLI reads 0 at the last evaluation: down, unknown, or '
      + 'their heartbeat lag (else replay delay) more than %s beyond '
      % u.humanSeconds(c.freshnessThresholdSeconds)
      + 'recovery_min_apply_delay (pgrepl:standby_freshness:sli).',
      'count(pgrepl:standby_freshness:sli{%s} == 0) or vector(0)' % FS,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplFreshnessBudgetBurn']),
    ), 6, 4),
    at(stat(
      'Lowest error budget left (30 days)',
      'The least error budget any standby has left of its %s freshness objective over '
      % (u.num(c.freshnessObjective * 100) + ' %')
      + '30 days: 1 - error ratio / %s. Below 0 the objective is missed.' % budget,
      'min(1 - pgrepl:standby_freshness:error_ratio30d{%s} / %s)' % [FS, budget],
      'percentunit',
      steps([['blue', null]]),
      colorMode='value',
      noValue='no standby',
    ), 6, 4),
    at(stat(
      'Heartbeat writers failing',
      'Clusters whose heartbeat writer refuses its table, never wrote, or last wrote more '
      + 'than %s ago: their heartbeat lag says nothing then.' % u.humanSeconds(c.heartbeatWriterStaleSeconds),
      // The alert's expression, on the series the dashboard's variables select.
      'count(%s) or vector(0)'
      % std.strReplace(std.rstripChars(promql.heartbeatWriterFailing(c { pgreplSelector: FC }), '\n'), '\n', ' '),
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplHeartbeatWriterFailing']),
    ), 6, 4),
    at(stat(
      'Heartbeats rejected',
      'Standbys whose heartbeat is rejected (clock ahead of theirs, untrusted table).',
      'count(pgrepl_heartbeat_rejected{%s} == 1) or vector(0)' % G,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplHeartbeatUnavailable']),
    ), 6, 4),
    at(timeseries(
      'Error ratio per standby',
      'Share of the rule evaluations of the last hour (and 6 hours) in which each standby '
      + 'was not fresh. The dashed line is 14.4 times the allowed %s: above it over the '
      % (u.num((1 - c.freshnessObjective) * 100) + ' %')
      + 'hour and the last 5 minutes, PgReplFreshnessBudgetBurn pages.',
      [
        target('pgrepl:standby_freshness:error_ratio1h{%s}' % FS, '{{target}}{{standby}} 1h', 'A'),
        target('pgrepl:standby_freshness:error_ratio6h{%s}' % FS, '{{target}}{{standby}} 6h', 'B'),
      ],
      'percentunit',
      runbook(['PgReplFreshnessBudgetBurn']),
      minimum=0,
      thresholds=steps([['green', null], ['red', 14.4 * (1 - c.freshnessObjective)]]),
    ), 12, 7),
    at(timeseries(
      'Error budget left per standby (30 days)',
      'Error budget of the freshness SLO each standby has left: 1 - its error ratio over '
      + '30 days / %s. 100 %% untouched, 0 used up.' % budget,
      [target('1 - pgrepl:standby_freshness:error_ratio30d{%s} / %s' % [FS, budget], '{{target}}{{standby}}')],
      'percentunit',
      runbook(['PgReplFreshnessBudgetBurn']),
      thresholds=steps([['red', null], ['green', 0]]),
    ), 12, 7),
    at(timeseries(
      'Staleness per standby',
      'How old the data of each standby is: its heartbeat lag where a heartbeat is '
      + 'configured and written, else its replay delay, beyond recovery_min_apply_delay '
      + '(pgrepl:standby_staleness:seconds). Above the dashed line it is not fresh.',
      [target('pgrepl:standby_staleness:seconds{%s}' % G, '{{target}}')],
      's',
      runbook(['PgReplFreshnessBudgetBurn']),
      minimum=0,
      thresholds=steps([['green', null], ['red', c.freshnessThresholdSeconds]]),
    ), 12, 7),
    at(timeseries(
      'Heartbeat lag',
      'End-to-end lag measured by the optional heartbeat writer (a row written on the '
      + 'primary every second, read on each standby); it includes recovery_min_apply_delay. '
      + 'Dashed: the thresholds of PgReplHeartbeatLagHigh beyond that delay.',
      [target('pgrepl_heartbeat_lag_seconds{%s}' % G, '{{target}}')],
      's',
      runbook(['PgReplHeartbeatLagHigh', 'PgReplHeartbeatWriterFailing', 'PgReplHeartbeatUnavailable']),
      minimum=0,
      thresholds=steps([['green', null], ['orange', c.heartbeatLagWarningSeconds], ['red', c.heartbeatLagCriticalSeconds]]),
    ), 12, 7),

    // ------------------------------------------------------------ lag
    row('Replication lag'),
    at(stat(
      'Max replay lag (bytes)',
      'Largest WAL distance between a primary and the replay position of one of its '
      + 'standbys, as seen by the primary.',
      'max(pgrepl_standby_lag_bytes{stage="replay", %s})' % G,
      'bytes',
      steps([['green', null], ['orange', c.lagBytesWarning]]),
      runbook(['PgReplStandbyLagBytesHigh']),
    ), 6, 4),
    at(stat(
      'Max replay delay beyond configured delay',
      'Largest time since the last replayed transaction on a standby that has WAL '
      + 'left to replay (0 when caught up), minus its recovery_min_apply_delay: a '
      + 'standby delayed on purpose counts only what exceeds its delay, as the alert does.',
      'max(%s)' % beyondDelay(G),
      's',
      steps([['green', null], ['orange', c.replayDelayWarningSeconds]]),
      runbook(['PgReplStandbyReplayDelayHigh']),
    ), 6, 4),
    at(stat(
      'WAL receivers not streaming',
      'Standbys whose WAL receiver is not in state streaming.',
      'count(pgrepl_wal_receiver_status{status="streaming", %s} == 0) or vector(0)' % G,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplWalReceiverNotStreaming']),
    ), 3, 4),
    at(stat(
      'Max WAL receiver silence',
      "Longest time since a standby's WAL receiver heard from its upstream.",
      'max(pgrepl_wal_receiver_last_message_age_seconds{%s})' % G,
      's',
      steps([['green', null], ['orange', c.walReceiverMessageAgeSeconds]]),
      runbook(['PgReplWalReceiverNotStreaming']),
    ), 3, 4),
    at(stat(
      'Standbys with replay paused',
      'Standbys where pg_wal_replay_pause() is in effect or requested.',
      'sum(pgrepl_replay_paused{%s}) or vector(0)' % G,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplReplayPaused']),
    ), 6, 4),

    at(lagBytes, 12, 8),
    at(lagSeconds, 12, 8),

    at(timeseries(
      'Lag stages of $standby (bytes)',
      'sent / write / flush / replay distance of the selected standby (variable '
      + "'Standby'): where along the pipeline WAL waits.",
      [target('pgrepl_standby_lag_bytes{%s}' % S, '{{application_name}} {{stage}}')],
      'bytes',
      runbook(['PgReplStandbyLagBytesHigh']),
      minimum=0,
    ), 12, 8),
    at(timeseries(
      'Lag stages of $standby (seconds)',
      'write_lag / flush_lag / replay_lag of the selected standby.',
      [target('pgrepl_standby_lag_seconds{%s}' % S, '{{application_name}} {{stage}}')],
      's',
      minimum=0,
    ), 12, 8),
    at(timeseries(
      'Time to catch up per standby',
      'At its current pace (the last 5 minutes), the time each lagging standby needs to '
      + 'replay what it is behind. None while it is caught up or does not catch up.',
      [target('pgrepl:standby_catchup_seconds:deriv5m{%s}' % G, '{{target}} → {{application_name}}')],
      's',
      minimum=0,
    ), 12, 7),
    at(timeseries(
      'Replay lag growth per standby',
      'How fast the replay lag of each standby grows (above 0: it falls further behind) or '
      + 'shrinks (below 0: it catches up), per second over 5 minutes.',
      [target('pgrepl:standby_lag_bytes:deriv5m{%s}' % G, '{{target}} → {{application_name}}')],
      'Bps',
      runbook(['PgReplStandbyFallingBehind']),
    ), 12, 7),

    at(timeseries(
      'Replay delay (standby side)',
      'now() - pg_last_xact_replay_timestamp() on each standby while it has WAL left to '
      + 'replay, 0 when caught up.',
      [target('pgrepl_replay_delay_seconds{%s}' % G, '{{target}}')],
      's',
      runbook(['PgReplStandbyReplayDelayHigh']),
      minimum=0,
      thresholds=steps([['green', null], ['orange', c.replayDelayWarningSeconds]]),
    ), 8, 7),
    at(timeseries(
      'Replay backlog (standby side)',
      'WAL received by each standby but not replayed yet.',
      [target('pgrepl_replay_backlog_bytes{%s}' % G, '{{target}}')],
      'bytes',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Time since last WAL receiver message',
      "now() - last_msg_receipt_time of each standby's WAL receiver. Grows when the "
      + 'upstream stops sending (it sends keepalives when idle).',
      [target('pgrepl_wal_receiver_last_message_age_seconds{%s}' % G, '{{target}}')],
      's',
      runbook(['PgReplWalReceiverNotStreaming']),
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Replay delay beyond recovery_min_apply_delay',
      'Replay delay of each standby minus its configured recovery_min_apply_delay (the '
      + 'alert thresholds are dashed). A standby delayed on purpose stays near 0; one '
      + 'that falls behind for another reason grows.',
      [target(beyondDelay(G), '{{target}}')],
      's',
      runbook(['PgReplStandbyReplayDelayHigh']),
      thresholds=steps([['green', null], ['orange', c.replayDelayWarningSeconds]]),
    ), 12, 7),
    at(stateTimeline(
      'Standbys waiting on recovery_min_apply_delay',
      'waiting on delay: the startup process waits for recovery_min_apply_delay '
      + '(wait event RecoveryApplyDelay), a deliberately delayed standby doing its job; '
      + 'applying: it replays as fast as it can.',
      'pgrepl_replay_apply_delay_waiting{%s}' % G,
      '{{target}}',
      APPLY_DELAY_MAP,
      runbook(['PgReplStandbyReplayDelayHigh']),
    ), 12, 7),

    // ------------------------------------------------------------ sync
    row('Synchronous replication'),
    at(stat(
      'Synchronous standbys missing',
      'Per primary: synchronous standbys required by synchronous_standby_names minus '
      + 'those connected in sync or quorum state. Above 0, commits wait.',
      'max by (%s) (pgrepl_sync_standbys_required{%s}) - max by (%s) (pgrepl_standbys_sync{%s})'
      % [by(['target']), G, by(['target']), G],
      'none',
      steps([['green', null], ['red', 1]]),
      runbook(['PgReplSyncStandbyMissing']),
      legend='{{target}}',
      noValue='no primary',
    ), 6, 7),
    at(stat(
      'Commits waiting on sync standby',
      'Per primary: backends waiting for a synchronous standby to confirm their commit '
      + "(wait_event 'SyncRep') and how long the oldest has waited. Commits hang while "
      + 'it grows.',
      null,
      's',
      steps([['green', null], ['red', c.commitsBlockedSeconds]]),
      runbook(['PgReplCommitsBlockedOnSyncStandby', 'PgReplSyncStandbyMissing']),
      exprs=[
        target('max by (%s) (pgrepl_sync_commits_waiting{%s})' % [by(['target']), G],
               '{{target}} waiting', 'A', instant=true),
        target('max by (%s) (pgrepl_sync_commit_oldest_wait_seconds{%s})' % [by(['target']), G],
               '{{target}} oldest wait', 'B', instant=true),
      ],
      noValue='no primary',
    ) {
      fieldConfig+: {
        overrides: [{
          matcher: { id: 'byFrameRefID', options: 'A' },
          properties: g.pUnit('none') + [{ id: 'thresholds', value: steps([['green', null], ['orange', 1]]) }],
        }],
      },
    }, 6, 7),
    at(stateTimeline(
      'Sync state per standby',
      'sync_state of each walsender: async, potential, sync or quorum.',
      stateCode('pgrepl_standby_sync_state', 'sync_state', ['async', 'potential', 'sync', 'quorum'], G),
      '{{target}} → {{application_name}}',
      SYNC_MAP,
      runbook(['PgReplSyncStandbyMissing']),
    ), 6, 7),
    at(timeseries(
      'Synchronous standbys: required vs connected',
      'pgrepl_sync_standbys_required (dashed) against pgrepl_standbys_sync per primary.',
      [
        target('pgrepl_standbys_sync{%s}' % G, '{{target}} connected', 'A'),
        target('pgrepl_sync_standbys_required{%s}' % G, '{{target}} required', 'B'),
      ],
      'none',
      runbook(['PgReplSyncStandbyMissing']),
      minimum=0,
      overrides=[g.ovRegex('.* required', g.pDashed())],
    ), 6, 7),
    at(table(
      'Connected standbys',
      'One row per walsender of pg_stat_replication.',
      [
        target(stateCode('pgrepl_standby_state', 'state',
                         ['startup', 'catchup', 'streaming', 'backup', 'stopping'], G), ref='A', table=true),
        target(stateCode('pgrepl_standby_sync_state', 'sync_state',
                         ['async', 'potential', 'sync', 'quorum'], G), ref='B', table=true),
        target('pgrepl_standby_sync_priority{%s}' % G, ref='C', table=true),
        target('pgrepl_standby_lag_bytes{stage="replay", %s}' % G, ref='D', table=true),
        target('time() - pgrepl_standby_reply_timestamp_seconds{%s}' % G, ref='E', table=true),
      ],
      'none',
      exclude=['__name__', 'instance', 'job', 'stage', 'cluster'],
      rename={
        target: 'Primary',
        application_name: 'Standby',
        client_addr: 'Client address',
        slot_name: 'Slot',
        'Value #A': 'State',
        'Value #B': 'Sync state',
        'Value #C': 'Sync priority',
        'Value #D': 'Replay lag',
        'Value #E': 'Since last reply',
      },
      overrides=[
        ov('State', g.pMappings(STATE_MAP) + g.pCell('color-text')),
        ov('Sync state', g.pMappings(SYNC_MAP) + g.pCell('color-text')),
        ov('Replay lag', g.pUnit('bytes')),
        ov('Since last reply', g.pUnit('s')),
        ov('Standby', g.pLinks([{
          title: 'Standby drill-down',
          url: std.strReplace(
            std.strReplace(standbyLink, '${__field.labels.target}', '${__data.fields.Primary}'),
            '${__field.labels.application_name}', '${__value.raw}'
          ),
        }])),
      ],
    ), 24, 7),

    // ------------------------------------------------------------ slots
    row('Replication slots'),
    at(stat(
      'Inactive slots',
      'Slots with no consumer connected. An inactive slot keeps WAL on the primary.',
      'count(pgrepl_slot_active{%s} == 0) or vector(0)' % G,
      'none',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplSlotInactive']),
    ), 4, 4),
    at(stat(
      'Slots running out of WAL',
      'Slots whose safe_wal_size is used up within %s at the rate of the last 5 minutes '
      % u.humanSeconds(c.slotRunwayCriticalSeconds)
      + '(pgrepl:slot_runway_seconds:rate5m): their WAL is lost unless the consumer comes back.',
      'count(pgrepl:slot_runway_seconds:rate5m{%s} < %s) or vector(0)' % [G, u.num(c.slotRunwayCriticalSeconds)],
      'none',
      steps([['green', null], ['red', 1]]),
      runbook(['PgReplSlotWillBeLost']),
    ), 4, 4),
    at(stat(
      'Max retained WAL by a slot',
      'Largest amount of WAL a slot keeps on disk (position minus restart_lsn).',
      'max(pgrepl_slot_retained_wal_bytes{%s})' % G,
      'bytes',
      steps([['green', null], ['orange', c.slotRetainedWarningBytes], ['red', c.slotRetainedCriticalBytes]]),
      runbook(['PgReplSlotRetainedWalHigh']),
    ), 3, 4),
    at(stat(
      'Max retained / max_slot_wal_keep_size',
      'Largest share of max_slot_wal_keep_size that a slot retains (no value when '
      + 'the setting is unlimited).',
      'max(pgrepl_slot_retained_wal_bytes{%s} / ignoring (slot_name, slot_type, database) group_left () pgrepl_max_slot_wal_keep_size_bytes{%s})'
      % [G, G],
      'percentunit',
      steps([['green', null], ['orange', c.slotKeepRatioWarning], ['red', c.slotKeepRatioCritical]]),
      runbook(['PgReplSlotRetainedWalHigh']),
    ), 3, 4),
    at(stat(
      'Slots at risk (unreserved)',
      'Slots whose WAL is beyond max_slot_wal_keep_size: it will be removed at the '
      + 'next checkpoint.',
      'count(pgrepl_slot_wal_status{wal_status="unreserved", %s} == 1) or vector(0)' % G,
      'none',
      steps([['green', null], ['red', 1]]),
      runbook(['PgReplSlotWalAtRisk']),
    ), 5, 4),
    at(stat(
      'Lost slots',
      'Slots whose WAL was removed: their standby needs a new base backup.',
      'count(pgrepl_slot_wal_status{wal_status="lost", %s} == 1) or vector(0)' % G,
      'none',
      steps([['green', null], ['red', 1]]),
      runbook(['PgReplSlotLost']),
    ), 5, 4),

    at(timeseries(
      'Retained WAL per slot vs max_slot_wal_keep_size',
      'WAL kept for each slot; the dashed line is max_slot_wal_keep_size of the target '
      + '(absent when unlimited, -1).',
      [
        target('pgrepl_slot_retained_wal_bytes{%s}' % G, '{{target}}/{{slot_name}}', 'A'),
        target('pgrepl_max_slot_wal_keep_size_bytes{%s}' % G, '{{target}} max_slot_wal_keep_size', 'B'),
      ],
      'bytes',
      runbook(['PgReplSlotRetainedWalHigh']),
      minimum=0,
      overrides=[g.ovRegex('.* max_slot_wal_keep_size', g.pDashed())],
    ), 12, 8),
    at(timeseries(
      'safe_wal_size per slot',
      'Bytes that can still be written before the slot is at risk. Absent when '
      + 'max_slot_wal_keep_size is unlimited.',
      [target('pgrepl_slot_safe_wal_size_bytes{%s}' % G, '{{target}}/{{slot_name}}')],
      'bytes',
      runbook(['PgReplSlotWalAtRisk']),
    ), 12, 8),
    at(timeseries(
      'Time until a slot loses its WAL',
      "Runway of each slot whose safe_wal_size is being used up: safe_wal_size at the rate "
      + 'it shrinks (at least the WAL rate of its server when no consumer is connected), '
      + 'over 5 minutes and 1 hour. Dashed: the critical and warning runways of '
      + 'PgReplSlotWillBeLost.',
      [
        target('pgrepl:slot_runway_seconds:rate5m{%s}' % G, '{{target}}/{{slot_name}} 5m', 'A'),
        target('pgrepl:slot_runway_seconds:rate1h{%s}' % G, '{{target}}/{{slot_name}} 1h', 'B'),
      ],
      's',
      runbook(['PgReplSlotWillBeLost']),
      minimum=0,
      thresholds=steps([['red', null], ['orange', c.slotRunwayCriticalSeconds], ['green', c.slotRunwayWarningSeconds]]),
    ), 12, 8),
    at(stateTimeline(
      'wal_status per slot',
      'reserved / extended / unreserved / lost (PostgreSQL 13+).',
      stateCode('pgrepl_slot_wal_status', 'wal_status', ['reserved', 'extended', 'unreserved', 'lost'], G),
      '{{target}}/{{slot_name}}',
      WAL_STATUS_MAP,
      runbook(['PgReplSlotWalAtRisk', 'PgReplSlotLost']),
    ), 12, 8),
    at(stateTimeline(
      'Slot active',
      'Whether a consumer is connected to each slot.',
      'pgrepl_slot_active{%s}' % G,
      '{{target}}/{{slot_name}}',
      ACTIVE_MAP,
      runbook(['PgReplSlotInactive']),
    ), 12, 7),
    at(timeseries(
      'Slot xmin age',
      "Age in transactions of the slot's xmin or catalog_xmin (with hot_standby_feedback "
      + 'a standby holds back VACUUM on the primary). Dashed: the thresholds of '
      + 'PgReplXminHeldBack; PostgreSQL stops assigning transaction IDs about 2.1 billion '
      + 'behind.',
      [target('pgrepl_slot_xmin_age_xids{%s}' % G, '{{target}}/{{slot_name}}')],
      'short',
      runbook(['PgReplXminHeldBack']),
      minimum=0,
      thresholds=steps([['green', null], ['orange', c.xminAgeWarning], ['red', c.xminAgeCritical]]),
    ), 12, 7),
    at(table(
      'Slots',
      'One row per replication slot.',
      local slotBy = by(['target', 'slot_name', 'slot_type', 'database']);
      [
        target('max by (%s) (pgrepl_slot_active{%s})' % [slotBy, G], ref='A', table=true),
        target('max by (%s) (%s)' % [slotBy, stateCode('pgrepl_slot_wal_status', 'wal_status',
                                                        ['reserved', 'extended', 'unreserved', 'lost'], G)],
               ref='B', table=true),
        target('max by (%s) (pgrepl_slot_retained_wal_bytes{%s})' % [slotBy, G], ref='C', table=true),
        target('max by (%s) (pgrepl_slot_safe_wal_size_bytes{%s})' % [slotBy, G], ref='D', table=true),
        target('max by (%s) (pgrepl_slot_xmin_age_xids{%s})' % [slotBy, G], ref='E', table=true),
        // PostgreSQL 17+ failover slots: empty columns before.
        target('max by (%s) (pgrepl_slot_failover{%s})' % [slotBy, G], ref='F', table=true),
        target('max by (%s) (pgrepl_slot_synced{%s})' % [slotBy, G], ref='G', table=true),
      ],
      'none',
      rename={
        target: 'Target',
        slot_name: 'Slot',
        slot_type: 'Type',
        database: 'Database',
        'Value #A': 'Active',
        'Value #B': 'wal_status',
        'Value #C': 'Retained WAL',
        'Value #D': 'safe_wal_size',
        'Value #E': 'xmin age',
        'Value #F': 'Failover',
        'Value #G': 'Synced',
      },
      overrides=[
        ov('Active', g.pMappings(ACTIVE_MAP) + g.pCell('color-text')),
        ov('wal_status', g.pMappings(WAL_STATUS_MAP) + g.pCell('color-text')),
        ov('Retained WAL', g.pUnit('bytes')),
        ov('safe_wal_size', g.pUnit('bytes')),
        ov('xmin age', g.pUnit('short')),
        ov('Failover', g.pMappings(YES_NO_MAP) + g.pCell('color-text')),
        ov('Synced', g.pMappings(YES_NO_MAP) + g.pCell('color-text')),
      ],
      links=runbook(['PgReplSlotInactive', 'PgReplSlotRetainedWalHigh', 'PgReplSlotWalAtRisk',
                     'PgReplSlotLost', 'PgReplFailoverSlotNotSynced']),
    ), 24, 7),

    // ------------------------------------------------------------ WAL and archiving
    row('WAL and archiving'),
    at(stat(
      'Archive failures',
      'Failed archive_command runs per target in the last interval.',
      'sum(increase(pgrepl_archiver_failed_total{%s}[$__rate_interval])) or vector(0)' % G,
      'short',
      steps([['green', null], ['orange', 1]]),
      runbook(['PgReplArchivingFailing']),
    ), 8, 4),
    at(stat(
      'Max WAL files waiting to be archived',
      '.ready files in pg_wal/archive_status, largest over the targets.',
      'max(pgrepl_archiver_pending_wal_files{%s})' % G,
      'short',
      steps([['green', null], ['orange', c.archivePendingWarning], ['red', c.archivePendingCritical]]),
      runbook(['PgReplArchivingFailing']),
    ), 8, 4),
    at(stat(
      'Oldest file waiting to be archived',
      'Age of the oldest .ready file over the targets; no value when none waits.',
      'max(time() - pgrepl_archiver_oldest_pending_timestamp_seconds{%s})' % G,
      's',
      steps([['green', null], ['orange', c.archiveAgeWarningSeconds], ['red', c.archiveAgeCriticalSeconds]]),
      runbook(['PgReplArchivingFailing']),
      noValue='none waiting',
    ), 8, 4),
    at(timeseries(
      'WAL generated per second',
      "Rate of the primary's current WAL position (bytes of WAL written per second); on a "
      + 'standby the rate of its receive position.',
      [target('rate(pgrepl_wal_lsn_bytes{position=~"current|receive", %s}[$__rate_interval])' % G,
              '{{target}} {{position}}')],
      'Bps',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'WAL directory size',
      'Size of pg_wal per target.',
      [target('pgrepl_wal_directory_bytes{%s}' % G, '{{target}}')],
      'bytes',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'WAL files in pg_wal',
      'Number of files in pg_wal per target.',
      [target('pgrepl_wal_directory_files{%s}' % G, '{{target}}')],
      'short',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'WAL segments archived / failed per minute',
      'archived_count and failed_count of pg_stat_archiver, per minute.',
      [
        target('rate(pgrepl_archiver_archived_total{%s}[$__rate_interval]) * 60' % G, '{{target}} archived', 'A'),
        target('rate(pgrepl_archiver_failed_total{%s}[$__rate_interval]) * 60' % G, '{{target}} failed', 'B'),
      ],
      'opm',
      runbook(['PgReplArchivingFailing']),
      minimum=0,
      overrides=[g.ovRegex('.* failed', g.pColor('red'))],
    ), 8, 7),
    at(timeseries(
      'WAL files waiting to be archived',
      'Number of .ready files in pg_wal/archive_status.',
      [target('pgrepl_archiver_pending_wal_files{%s}' % G, '{{target}}')],
      'short',
      runbook(['PgReplArchivingFailing']),
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Age of the oldest file waiting to be archived',
      'now minus the modification time of the oldest .ready file; absent when none waits.',
      [target('time() - pgrepl_archiver_oldest_pending_timestamp_seconds{%s}' % G, '{{target}}')],
      's',
      runbook(['PgReplArchivingFailing']),
      minimum=0,
    ), 8, 7),

    // ------------------------------------------------------------ exporter health
    row('Exporter health'),
    at(stateTimeline(
      'Target up',
      '1 when the last collection from the target succeeded.',
      'pgrepl_up{%s}' % G,
      '{{target}}',
      UP_MAP,
      runbook(['PgReplTargetDown']),
    ), 12, 6),
    at(timeseries(
      'Collection duration',
      'How long the last collection from each target took.',
      [target('pgrepl_collect_duration_seconds{%s}' % G, '{{target}}')],
      's',
      minimum=0,
    ), 12, 6),
    at(timeseries(
      'Collection errors',
      'Failed collections per target in each interval.',
      [target('increase(pgrepl_collect_errors_total{%s}[$__rate_interval])' % G, '{{target}}')],
      'short',
      runbook(['PgReplTargetDown']),
      minimum=0,
    ), 8, 6),
    at(timeseries(
      'Age of the last successful collection',
      'Age of pgrepl_last_collect_success_timestamp_seconds when Prometheus scraped it, '
      + 'against the age at which PgReplCollectionStale fires (dashed: %s collection '
      % u.num(c.collectionStaleFactor)
      + 'intervals, at least %s).' % u.humanSeconds(c.collectionStaleMinSeconds),
      [
        target('timestamp(pgrepl_last_collect_success_timestamp_seconds{%s}) - pgrepl_last_collect_success_timestamp_seconds{%s}'
               % [G, G], '{{target}}', 'A'),
        target('clamp_min(%s * pgrepl_collect_interval_seconds{%s}, %s)'
               % [u.num(c.collectionStaleFactor), G, u.num(c.collectionStaleMinSeconds)],
               '{{target}} stale above', 'B'),
      ],
      's',
      runbook(['PgReplTargetDown', 'PgReplCollectionStale']),
      minimum=0,
      overrides=[g.ovRegex('.* stale above', g.pDashed())],
    ), 8, 6),
    at(table(
      'Exporter builds',
      'Exporter processes that Prometheus scrapes and their version.',
      [target('count by (%s) (pgrepl_exporter_build_info{%s})' % [by(['instance', 'job', 'version']), E],
              ref='A', table=true)],
      'none',
      rename={
        instance: 'Instance',
        job: 'Job',
        version: 'Version',
        'Value #A': 'Processes',
        Value: 'Processes',
      },
    ), 8, 6),
    at(stateTimeline(
      'Configuration reload',
      'Whether the last configuration reload of each exporter process succeeded '
      + '(SIGHUP or POST /-/reload); after a failed one it runs the previous configuration.',
      'pgrepl_config_last_reload_successful{%s}' % E,
      '{{instance}}',
      RELOAD_MAP,
      runbook(['PgReplConfigReloadFailed']),
    ), 12, 6),
    at(timeseries(
      'Collector restarts',
      "Collection tasks that died and were restarted by the exporter's watchdog, per "
      + 'target. Any is a bug of the exporter: report it.',
      [target('increase(pgrepl_collector_restarts_total{%s}[$__rate_interval])' % G, '{{target}}')],
      'short',
      runbook(['PgReplCollectorRestarted']),
      minimum=0,
    ), 12, 6),
  ];

  g.dashboard(
    c.dashboardUIDs.overview,
    'PostgreSQL replication / Overview',
    'Physical streaming replication of PostgreSQL as seen by pg_replication_exporter: '
    + 'topology, lag, synchronous replication, slots, WAL archiving and exporter health.',
    g.layout(items),
    [g.datasourceVar()]
    + clusterVars('pgrepl_up')
    + [
      g.queryVar('target', 'Target', 'label_values(pgrepl_up{%s}, target)' % FC),
      g.queryVar('standby', 'Standby (lag stages)',
                 'label_values(pgrepl_standby_lag_bytes{%s}, application_name)' % G,
                 multi=false, includeAll=false),
    ],
    [
      dashboardsLink('Standby drill-down'),
      {
        title: 'Runbooks',
        type: 'link',
        url: runbooksURL,
        targetBlank: true,
        icon: 'doc',
        asDropdown: false,
        includeVars: false,
        keepTime: false,
        tags: [],
        tooltip: 'Runbooks of the replication alerts',
      },
    ],
    [alertsAnnotation],
  )
