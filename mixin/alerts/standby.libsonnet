// A standby's lag and replay delay, standbys that went away, its WAL
// receiver; replay paused.
local u = import '../lib/utils.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  local lagDesc = |||
    Standby {{ $labels.application_name }} ({{ $labels.client_addr }}) of {{ $labels.target }}
    has replayed {{ $value | humanize1024 }}B less WAL than the primary has written
    (warning above %(threshold)s for %(for)s)
    {{- with %(catchup)s | query }};
    at its current pace it catches up in {{ . | first | value | humanizeDuration }}{{ end }}.
  ||| % {
    threshold: u.humanBytes(c.lagBytesWarning),
    'for': h(c.lagBytesFor),
    catchup: q('pgrepl:standby_catchup_seconds:deriv5m', ['target', 'application_name', 'client_addr', 'slot_name']),
  };

  // Walsenders in state catchup that have not been in it for
  // catchupTimeout: a standby that has just attached replays what it
  // missed, its lag is expected to be large. In catchup for the whole
  // timeout (and already 15 minutes ago, as `offset` tells) is no longer
  // "just attached".
  local catchupYoung = |||
    (%(state)s == 1)
    unless
    (
      (min_over_time(%(state)s[%(timeout)s]) == 1)
      and
      (%(state)s offset %(timeout)s == 1)
    )
  ||| % { state: sel('pgrepl_standby_state', 'state="catchup"'), timeout: c.catchupTimeout };

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
        |||
          (%(lag)s > %(threshold)s)
          unless ignoring (stage, state)
          (
            %(young)s
          )
        ||| % {
          lag: sel('pgrepl_standby_lag_bytes', 'stage="replay"'),
          threshold: u.bytesExpr(c.lagBytesWarning),
          young: std.rstripChars(promql.indent(catchupYoung, 2), '\n'),
        },
        'A standby replays WAL far behind its primary.',
        lagDesc,
        c.lagBytesFor,
        section('Lag of a standby, seen from its primary (pg_stat_replication)', |||
          Warnings: a standby's lag pages through the freshness SLO
          (PgReplFreshnessBudgetBurn). A walsender in state catchup is not
          judged for %(timeout)s: a standby that has just attached replays what
          it missed.
        ||| % { timeout: h(c.catchupTimeout) }),
      ),
      alert(
        'PgReplStandbyFallingBehind',
        'warning',
        |||
          (pgrepl:standby_lag_bytes:deriv5m > 0)
          and
          (%(lag)s > %(min)s)
        ||| % {
          lag: sel('pgrepl_standby_lag_bytes', 'stage="replay"'),
          min: u.bytesExpr(c.standbyFallingBehindMinBytes),
        },
        'A standby falls further behind its primary.',
        |||
          The replay lag of standby {{ $labels.application_name }} ({{ $labels.client_addr }}) of {{ $labels.target }}
          has grown for %(for)s, now by {{ $value | humanize1024 }}B/s
          {{- with %(lag)s | query }} to {{ . | first | value | humanize1024 }}B{{ end }}:
          it replays more slowly than the primary writes WAL and does not catch up at this pace.
        ||| % {
          'for': h(c.standbyFallingBehindFor),
          lag: q('pgrepl_standby_lag_bytes', ['target', 'application_name', 'client_addr', 'slot_name', 'stage']),
        },
        c.standbyFallingBehindFor,
        |||
          The 5-minute derivative of the replay lag stays above 0 (the lag
          grows at every evaluation) while the lag is above %(min)s, for
          %(for)s: not a burst, a standby that cannot keep up.
        ||| % { min: u.humanBytes(c.standbyFallingBehindMinBytes), 'for': h(c.standbyFallingBehindFor) },
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
          against recovery_min_apply_delay plus the threshold. A warning:
          the freshness SLO pages.
        |||),
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
