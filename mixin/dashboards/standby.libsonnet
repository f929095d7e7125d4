// The standby dashboard: one standby seen by its primary and by itself.
local u = import '../lib/utils.libsonnet';

function(c)
  local d = (import 'common.libsonnet')(c);
  local g = d.g, row = d.row, at = d.at, target = d.target, steps = d.steps, stat = d.stat,
        timeseries = d.timeseries, stateTimeline = d.stateTimeline, table = d.table, ov = d.ov,
        runbook = d.runbook, by = d.by, filter = d.filter, PAUSED_MAP = d.PAUSED_MAP,
        APPLY_DELAY_MAP = d.APPLY_DELAY_MAP, SYNC_MAP = d.SYNC_MAP,
        RECEIVER_MAP = d.RECEIVER_MAP, STATE_MAP = d.STATE_MAP, stateCode = d.stateCode,
        beyondDelay = d.beyondDelay, clusterVars = d.clusterVars,
        alertsAnnotation = d.alertsAnnotation, dashboardsLink = d.dashboardsLink;

  local P = filter(['cluster=~"$cluster"', 'target="$primary"', 'application_name="$standby"']);
  local PT = filter(['cluster=~"$cluster"', 'target="$primary"']);
  local R = filter(['cluster=~"$cluster"', 'target="$replica"']);
  local items = [
    row('$standby as seen by $primary'),
    at(stat(
      'Replay lag',
      "WAL between the primary and the standby's replay position.",
      'max(pgrepl_standby_lag_bytes{stage="replay", %s})' % P,
      'bytes',
      steps([['green', null], ['orange', c.lagBytesWarning]]),
      runbook(['PgReplStandbyLagBytesHigh']),
    ), 6, 4),
    at(stat(
      'Replay lag (time)',
      'replay_lag of pg_stat_replication.',
      'max(pgrepl_standby_lag_seconds{stage="replay", %s})' % P,
      's',
      steps([['green', null], ['orange', c.replayDelayWarningSeconds]]),
      runbook(['PgReplStandbyReplayDelayHigh']),
    ), 6, 4),
    at(stat(
      'State',
      'state of the walsender.',
      'max(%s)' % stateCode('pgrepl_standby_state', 'state',
                            ['startup', 'catchup', 'streaming', 'backup', 'stopping'], P),
      'none',
      steps([['text', null]]),
      mappings=STATE_MAP,
      noValue='not connected',
      colorMode='value',
    ), 6, 4),
    at(stat(
      'Sync state',
      'sync_state of the walsender.',
      'max(%s)' % stateCode('pgrepl_standby_sync_state', 'sync_state',
                            ['async', 'potential', 'sync', 'quorum'], P),
      'none',
      steps([['text', null]]),
      mappings=SYNC_MAP,
      noValue='not connected',
      colorMode='value',
    ), 6, 4),
    at(timeseries(
      'Lag by stage (bytes)',
      "sent / write / flush / replay distance from the primary's position.",
      [target('pgrepl_standby_lag_bytes{%s}' % P, '{{stage}}')],
      'bytes',
      runbook(['PgReplStandbyLagBytesHigh']),
      minimum=0,
    ), 12, 8),
    at(timeseries(
      'Lag by stage (seconds)',
      'write_lag / flush_lag / replay_lag.',
      [target('pgrepl_standby_lag_seconds{%s}' % P, '{{stage}}')],
      's',
      runbook(['PgReplStandbyReplayDelayHigh']),
      minimum=0,
    ), 12, 8),
    at(timeseries(
      "Time since the standby's last reply",
      'now minus reply_time: how long ago the standby last reported back.',
      [target('time() - pgrepl_standby_reply_timestamp_seconds{%s}' % P, '{{application_name}}')],
      's',
      minimum=0,
    ), 12, 7),
    at(timeseries(
      "WAL retained by the standby's slot",
      'Retained WAL of the slot the walsender uses, against '
      + 'max_slot_wal_keep_size (dashed).',
      [
        target('pgrepl_slot_retained_wal_bytes{%s} and on (%s) pgrepl_standby_state{%s}'
               % [PT, by(['target', 'slot_name']), P], '{{slot_name}}', 'A'),
        target('pgrepl_max_slot_wal_keep_size_bytes{%s}' % PT, 'max_slot_wal_keep_size', 'B'),
      ],
      'bytes',
      runbook(['PgReplSlotRetainedWalHigh']),
      minimum=0,
      overrides=[ov('max_slot_wal_keep_size', g.pDashed())],
    ), 12, 7),
    at(timeseries(
      'Time to catch up',
      'At its current pace (the last 5 minutes), the time the standby needs to replay '
      + 'what it is behind. None while it is caught up or does not catch up.',
      [target('pgrepl:standby_catchup_seconds:deriv5m{%s}' % P, '{{application_name}}')],
      's',
      minimum=0,
    ), 12, 7),
    at(timeseries(
      'Replay lag growth',
      'How fast the replay lag grows (above 0: falling further behind) or shrinks (below 0: '
      + 'catching up), per second over 5 minutes.',
      [target('pgrepl:standby_lag_bytes:deriv5m{%s}' % P, '{{application_name}}')],
      'Bps',
      runbook(['PgReplStandbyFallingBehind']),
    ), 12, 7),

    row('Standby server $replica'),
    at(timeseries(
      'Freshness',
      'How old the data of the standby is (its heartbeat lag where configured, else its '
      + 'replay delay, beyond recovery_min_apply_delay), against the %s of its freshness SLO '
      % u.humanSeconds(c.freshnessThresholdSeconds)
      + '(dashed).',
      [target('pgrepl:standby_staleness:seconds{%s}' % R, 'staleness')],
      's',
      runbook(['PgReplFreshnessBudgetBurn', 'PgReplHeartbeatLagHigh']),
      minimum=0,
      thresholds=steps([['green', null], ['red', c.freshnessThresholdSeconds]]),
    ), 12, 6),
    at(timeseries(
      'Freshness SLO',
      'Share of the evaluations of the last hour and 6 hours in which the standby was not '
      + 'fresh, and the error budget it has left of its %s objective over 30 days.'
      % (u.num(c.freshnessObjective * 100) + ' %'),
      [
        target('pgrepl:standby_freshness:error_ratio1h{%s}' % R, 'error ratio 1h', 'A'),
        target('pgrepl:standby_freshness:error_ratio6h{%s}' % R, 'error ratio 6h', 'B'),
        target('1 - pgrepl:standby_freshness:error_ratio30d{%s} / (1 - %s)' % [R, u.num(c.freshnessObjective)],
               'budget left (30 days)', 'C'),
      ],
      'percentunit',
      runbook(['PgReplFreshnessBudgetBurn']),
    ), 12, 6),
    at(stateTimeline(
      'WAL receiver status',
      'status of pg_stat_wal_receiver (stopped when no row).',
      stateCode('pgrepl_wal_receiver_status', 'status',
                ['stopped', 'starting', 'streaming', 'waiting', 'restarting', 'stopping'], R),
      '{{target}}',
      RECEIVER_MAP,
      runbook(['PgReplWalReceiverNotStreaming']),
    ), 12, 5),
    at(stateTimeline(
      'Replay paused',
      "pg_get_wal_replay_pause_state() not 'not paused'.",
      'pgrepl_replay_paused{%s}' % R,
      '{{target}}',
      PAUSED_MAP,
      runbook(['PgReplReplayPaused']),
    ), 12, 5),
    at(timeseries(
      'Replay delay beyond recovery_min_apply_delay',
      'Replay delay minus the configured recovery_min_apply_delay (dashed), as '
      + 'PgReplStandbyReplayDelayHigh judges it: near 0 on a standby delayed on purpose, '
      + 'growing on one that falls behind.',
      [
        target(beyondDelay(R), 'beyond delay', 'A'),
        target('pgrepl_recovery_min_apply_delay_seconds{%s}' % R, 'recovery_min_apply_delay', 'B'),
      ],
      's',
      runbook(['PgReplStandbyReplayDelayHigh']),
      overrides=[ov('recovery_min_apply_delay', g.pDashed())],
    ), 12, 6),
    at(stateTimeline(
      'Waiting on recovery_min_apply_delay',
      'waiting on delay: the startup process waits for recovery_min_apply_delay (wait '
      + 'event RecoveryApplyDelay), the delayed standby doing its job; applying: it '
      + 'replays as fast as it can.',
      'pgrepl_replay_apply_delay_waiting{%s}' % R,
      '{{target}}',
      APPLY_DELAY_MAP,
      runbook(['PgReplStandbyReplayDelayHigh']),
    ), 12, 6),
    at(timeseries(
      'Replay delay',
      'now() - pg_last_xact_replay_timestamp() while WAL is left to replay.',
      [target('pgrepl_replay_delay_seconds{%s}' % R, '{{target}}')],
      's',
      runbook(['PgReplStandbyReplayDelayHigh']),
      minimum=0,
      thresholds=steps([['green', null], ['orange', c.replayDelayWarningSeconds]]),
    ), 8, 7),
    at(timeseries(
      'Replay backlog',
      'WAL received but not replayed yet.',
      [target('pgrepl_replay_backlog_bytes{%s}' % R, '{{target}}')],
      'bytes',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Time since last replayed transaction',
      'now minus pg_last_xact_replay_timestamp(); grows when the primary is idle.',
      [target('time() - pgrepl_last_replay_timestamp_seconds{%s}' % R, '{{target}}')],
      's',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Receive and replay rate',
      'WAL received and replayed per second by the standby.',
      [target('rate(pgrepl_wal_lsn_bytes{%s}[$__rate_interval])' % R, '{{position}}')],
      'Bps',
      minimum=0,
    ), 8, 7),
    at(timeseries(
      'Time since last message from upstream',
      'now() - last_msg_receipt_time of the WAL receiver.',
      [target('pgrepl_wal_receiver_last_message_age_seconds{%s}' % R, '{{target}}')],
      's',
      runbook(['PgReplWalReceiverNotStreaming']),
      minimum=0,
    ), 8, 7),
    at(table(
      'Upstream',
      'The server the WAL receiver streams from and the slot it uses.',
      [
        target('max by (%s) (pgrepl_wal_receiver_info{%s})' % [by(['target', 'sender_host', 'sender_port', 'slot_name']), R],
               ref='A', table=true),
        target('max by (%s) (pgrepl_timeline_id{%s})' % [by(['target']), R], ref='B', table=true),
        target('max by (%s) (pgrepl_recovery_min_apply_delay_seconds{%s})' % [by(['target']), R], ref='C', table=true),
        target('max by (%s) (pgrepl_max_standby_streaming_delay_seconds{%s})' % [by(['target']), R], ref='D', table=true),
      ],
      'none',
      exclude=['Value #A'],
      rename={
        target: 'Standby',
        sender_host: 'Upstream host',
        sender_port: 'Upstream port',
        slot_name: 'Slot',
        'Value #B': 'Timeline',
        'Value #C': 'recovery_min_apply_delay',
        'Value #D': 'max_standby_streaming_delay',
      },
      overrides=[
        ov('recovery_min_apply_delay', g.pUnit('s')),
        ov('max_standby_streaming_delay', g.pUnit('s')),
      ],
    ), 8, 7),
  ];

  g.dashboard(
    c.dashboardUIDs.standby,
    'PostgreSQL replication / Standby',
    "One standby in detail: the primary's view of its walsender (lag stages, state, "
    + "slot) and the standby server's own view (WAL receiver, replay).",
    g.layout(items),
    [g.datasourceVar()]
    + clusterVars('pgrepl_up')
    + [
      g.queryVar('primary', 'Primary',
                 'label_values(pgrepl_standby_state{%s}, target)' % filter(['cluster=~"$cluster"']),
                 multi=false, includeAll=false),
      g.queryVar('standby', 'Standby (application_name)',
                 'label_values(pgrepl_standby_state{%s}, application_name)' % filter(['cluster=~"$cluster"', 'target="$primary"']),
                 multi=false, includeAll=false),
      g.queryVar('replica', 'Standby server (target)',
                 'label_values(pgrepl_wal_receiver_status{%s}, target)' % filter(['cluster=~"$cluster"']),
                 multi=false, includeAll=false),
    ],
    [dashboardsLink('Overview')],
    [alertsAnnotation],
  )
