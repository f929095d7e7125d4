// A standby's lag and replay delay, standbys that went away, its WAL
// receiver; replay paused.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  local lagDesc(severity, threshold, extra) = |||
    Standby {{ $labels.application_name }} ({{ $labels.client_addr }}) of {{ $labels.target }}
    has replayed {{ $value | humanize1024 }}B less WAL than the primary has written
    (%(severity)s above %(threshold)s for %(for)s).%(extra)s
  ||| % { severity: severity, threshold: u.humanBytes(threshold), 'for': h(c.lagBytesFor), extra: extra };

  local replayDelayExpr(threshold) = |||
    %(delay)s
    > %(threshold)s + (%(min)s or 0 * %(delay)s)
  ||| % {
    delay: sel('pgrepl_replay_delay_seconds'),
    min: sel('pgrepl_recovery_min_apply_delay_seconds'),
    threshold: u.num(threshold),
  };

  local replayDelayDesc(severity, threshold) = |||
    Standby {{ $labels.target }} last replayed a transaction committed {{ $value | humanizeDuration }} ago
    although it has received newer WAL
    {{- with %(min)s | query }}
    (configured recovery_min_apply_delay {{ . | first | value | humanizeDuration }}){{ end }};
    %(severity)s above %(threshold)s beyond the configured delay.
  ||| % {
    min: q('pgrepl_recovery_min_apply_delay_seconds', after=' > 0'),
    severity: severity,
    threshold: u.humanSeconds(threshold),
  };

  local walReceiverExpr = |||
    (%(age)s > %(threshold)s)
    or
    (max without (status) (%(status)s) == 0)
  ||| % {
    age: sel('pgrepl_wal_receiver_last_message_age_seconds'),
    status: sel('pgrepl_wal_receiver_status', 'status="streaming"'),
    threshold: u.num(c.walReceiverMessageAgeSeconds),
  };

  local walReceiverDesc = |||
    WAL receiver of standby {{ $labels.target }} is
    {{ with %(status)s | query }}{{ (. | first).Labels.status }}{{ else }}unknown{{ end }};
    last message from its upstream
    {{ with %(age)s | query }}{{ . | first | value | humanizeDuration }} ago{{ else }}unknown (no WAL receiver){{ end }}.
    Its byte lag and replay delay read 0 because nothing new arrives.
  ||| % {
    status: q('pgrepl_wal_receiver_status', after=' == 1'),
    age: q('pgrepl_wal_receiver_last_message_age_seconds'),
  };

  local standbyMemoryText =
    local s = u.seconds(c.standbyMemory);
    if s % 3600 == 0 then '%d hour%s' % [s / 3600, if s == 3600 then '' else 's'] else h(c.standbyMemory);

  {
    rules: [
      // ------------------------------------------------------------------
      // Lag of a standby, seen from its primary (pg_stat_replication)
      // ------------------------------------------------------------------
      alert(
        'PgReplStandbyLagBytesHigh',
        'warning',
        '%s > %s' % [sel('pgrepl_standby_lag_bytes', 'stage="replay"'), u.bytesExpr(c.lagBytesWarning)],
        'A standby replays WAL far behind its primary.',
        lagDesc('warning', c.lagBytesWarning, ''),
        c.lagBytesFor,
        section('Lag of a standby, seen from its primary (pg_stat_replication)'),
      ),
      alert(
        'PgReplStandbyLagBytesHigh',
        'critical',
        '%s > %s' % [sel('pgrepl_standby_lag_bytes', 'stage="replay"'), u.bytesExpr(c.lagBytesCritical)],
        'A standby replays WAL far behind its primary.',
        lagDesc('critical', c.lagBytesCritical, ' A failover to it now would lose or delay that much data.'),
        c.lagBytesFor,
      ),

      // ------------------------------------------------------------------
      // Replay delay, seen from the standby
      // ------------------------------------------------------------------
      alert(
        'PgReplStandbyReplayDelayHigh',
        'warning',
        replayDelayExpr(c.replayDelayWarningSeconds),
        'A standby applies WAL with a long delay.',
        replayDelayDesc('warning', c.replayDelayWarningSeconds),
        c.replayDelayFor,
        section('Replay delay, seen from the standby', |||
          pgrepl_replay_delay_seconds is a delay only when WAL with
          transactions waits to be replayed: 0 when everything received is
          replayed while the WAL receiver streams (or, in a cluster, when the
          standby has every transaction the primary completed), absent when
          nothing tells (no receiver and no primary to compare with), so an
          idle primary never makes it grow. A delayed standby is judged
          against recovery_min_apply_delay plus the threshold.
        |||),
      ),
      alert(
        'PgReplStandbyReplayDelayHigh',
        'critical',
        replayDelayExpr(c.replayDelayCriticalSeconds),
        'A standby applies WAL with a long delay.',
        replayDelayDesc('critical', c.replayDelayCriticalSeconds),
        c.replayDelayFor,
      ),

      // ------------------------------------------------------------------
      // Standbys that went away
      // ------------------------------------------------------------------
      alert(
        'PgReplStandbyDisconnected',
        'warning',
        |||
          (max_over_time(pgrepl:standbys:by_role[%(memory)s]) - pgrepl:standbys:by_role > 0)
          or
          (%(expected)s == 0)
        ||| % { memory: c.standbyMemory, expected: sel('pgrepl_cluster_expected_standby_connected') },
        'A server has fewer connected standbys than it had.',
        |||
          {{ if $labels.standby -}}
          Standby {{ $labels.standby }} of cluster {{ $labels.cluster }} is configured but not streaming
          from the primary.
          {{- else -}}
          {{ $labels.target }} ({{ $labels.role }}) has {{ with %(standbys)s | query }}{{ . | first | value | printf "%%.0f" }}{{ end }}
          connected standby(s), {{ $value | printf "%%.0f" }} fewer than during the last %(memory)s.
          {{- end }}
        ||| % { standbys: q('pgrepl_standbys'), memory: standbyMemoryText },
        c.standbyDisconnectedFor,
        section('Standbys that went away', |||
          Fewer walsenders than the most this server had in the same role over
          the last %s; or, with the exporter's cluster view, a configured
          standby that is not streaming from the primary.
        ||| % standbyMemoryText),
      ),

      // ------------------------------------------------------------------
      // WAL receiver of a standby
      // ------------------------------------------------------------------
      alert(
        'PgReplWalReceiverNotStreaming',
        'warning',
        walReceiverExpr,
        'A standby does not receive WAL from its upstream server.',
        walReceiverDesc,
        c.walReceiverWarningFor,
        section('WAL receiver of a standby', |||
          A standby cut off from its upstream has receive = replay, so its
          backlog reads 0 and its replay delay is unknown (absent); only the
          receiver status and the age of the last message tell. 120 s (the default) is twice
          wal_receiver_timeout (60 s): with the default timeouts an idle
          primary still sends a keepalive at least every 30 s.
        |||),
      ),
      alert(
        'PgReplWalReceiverNotStreaming',
        'critical',
        walReceiverExpr,
        'A standby does not receive WAL from its upstream server.',
        walReceiverDesc,
        c.walReceiverCriticalFor,
      ),
    ],
    paused: [
      // ------------------------------------------------------------------
      // Replay paused on a standby (pg_wal_replay_pause())
      // ------------------------------------------------------------------
      alert(
        'PgReplReplayPaused',
        'warning',
        '%s == 1' % sel('pgrepl_replay_paused'),
        'WAL replay is paused on a standby.',
        |||
          Replay has been paused on standby {{ $labels.target }} for more than %(for)s
          {{- with %(backlog)s | query }};
          {{ . | first | value | humanize1024 }}B of received WAL wait to be applied{{ end }}.
          Someone ran pg_wal_replay_pause() or a recovery target with recovery_target_action = 'pause' was reached.
        ||| % { 'for': h(c.replayPausedFor), backlog: q('pgrepl_replay_backlog_bytes') },
        c.replayPausedFor,
        section('Replay paused on a standby (pg_wal_replay_pause())'),
      ),
    ],
  }
