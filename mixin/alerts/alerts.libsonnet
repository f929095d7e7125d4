// Alerting rules. Every threshold and `for:` comes from _config
// (config.libsonnet); descriptions state the configured values.
local u = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local h = u.humanDuration,
    local sel(metric, extra='') = u.sel(c, metric, extra),
    local q(before, labels=['target'], after='') = u.tq(c, before, labels, after),
    local server = u.server(c),

    local alert(name, severity, expr, summary, description, forDuration=null, comment=null) =
      {
        alert: name,
        expr: expr,
        labels: { severity: severity },
        annotations: {
          summary: summary,
          description: u.fold(description),
          runbook_url: u.runbook(c, name),
          // The rendered YAML breaks the description where this file does.
          yamlFolded:: { description: u.lines(description) },
        },
      }
      + (if forDuration != null then { 'for': forDuration } else {})
      + (if comment != null then { yamlComment:: comment } else {}),

    // A heading comment in the rendered file, above the first rule of a
    // section.
    local section(title, text='') =
      '------------------------------------------------------------------\n'
      + title + '\n'
      + '------------------------------------------------------------------\n'
      + text,

    local lagDesc(severity, threshold, extra) = |||
      Standby {{ $labels.application_name }} ({{ $labels.client_addr }}) of {{ $labels.target }}
      has replayed {{ $value | humanize1024 }}B less WAL than the primary has written
      (%(severity)s above %(threshold)s for %(for)s).%(extra)s
    ||| % { severity: severity, threshold: u.humanBytes(threshold), 'for': h(c.lagBytesFor), extra: extra },

    local replayDelayExpr(threshold) = |||
      %(delay)s
      > %(threshold)s + (%(min)s or 0 * %(delay)s)
    ||| % {
      delay: sel('pgrepl_replay_delay_seconds'),
      min: sel('pgrepl_recovery_min_apply_delay_seconds'),
      threshold: u.num(threshold),
    },
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
    },

    local walReceiverExpr = |||
      (%(age)s > %(threshold)s)
      or
      (max without (status) (%(status)s) == 0)
    ||| % {
      age: sel('pgrepl_wal_receiver_last_message_age_seconds'),
      status: sel('pgrepl_wal_receiver_status', 'status="streaming"'),
      threshold: u.num(c.walReceiverMessageAgeSeconds),
    },
    local walReceiverDesc = |||
      WAL receiver of standby {{ $labels.target }} is
      {{ with %(status)s | query }}{{ (. | first).Labels.status }}{{ else }}unknown{{ end }};
      last message from its upstream
      {{ with %(age)s | query }}{{ . | first | value | humanizeDuration }} ago{{ else }}unknown (no WAL receiver){{ end }}.
      Its byte lag and replay delay read 0 because nothing new arrives.
    ||| % {
      status: q('pgrepl_wal_receiver_status', after=' == 1'),
      age: q('pgrepl_wal_receiver_last_message_age_seconds'),
    },

    local retained = sel('pgrepl_slot_retained_wal_bytes'),
    local slotRetainedExpr(bytes, ratio, horizon) = |||
      (%(retained)s > %(bytes)s)
      or
      (
        %(retained)s
        > ignoring (slot_name, slot_type, database) group_left ()
        (%(ratio)s * %(keep)s)
      )
      or
      (
        %(retained)s
        and
        predict_linear(%(safe)s[%(window)s], %(horizon)s) < 0
      )
    ||| % {
      retained: retained,
      bytes: u.bytesExpr(bytes),
      ratio: u.num(ratio),
      keep: sel('pgrepl_max_slot_wal_keep_size_bytes'),
      safe: sel('pgrepl_slot_safe_wal_size_bytes'),
      window: c.slotSafeWalWindow,
      horizon: u.secondsExpr(horizon),
    },
    local slotRetainedDesc = |||
      Slot {{ $labels.slot_name }} on {{ $labels.target }} retains {{ $value | humanize1024 }}B of WAL
      {{- with %(keep)s | query }}
      (max_slot_wal_keep_size {{ . | first | value | humanize1024 }}B){{ end }}
      {{- with %(safe)s | query }};
      {{ . | first | value | humanize1024 }}B can still be written before it is at risk{{ end }}.
      pg_wal keeps growing until its consumer catches up or the slot is dropped.
    ||| % {
      keep: q('pgrepl_max_slot_wal_keep_size_bytes'),
      safe: q('pgrepl_slot_safe_wal_size_bytes', ['target', 'slot_name']),
    },

    local syncMissingExpr(op) = |||
      (%(required)s - %(sync)s > 0)
      and on (%(server)s) (%(rec)s == 0)
      %(op)s on (%(server)s) %(settings)s
    ||| % {
      required: sel('pgrepl_sync_standbys_required'),
      sync: sel('pgrepl_standbys_sync'),
      rec: sel('pgrepl_in_recovery'),
      settings: sel('pgrepl_settings_info', 'synchronous_commit=~"off|local"'),
      server: server,
      op: op,
    },
    local syncSettings = std.rstripChars(|||
      {{- with %s | query }}
      (synchronous_standby_names = '{{ (. | first).Labels.synchronous_standby_names }}',
      synchronous_commit = {{ (. | first).Labels.synchronous_commit }}){{ end }}
    ||| % q('pgrepl_settings_info'), '\n'),
    local syncMissingDesc = |||
      Primary {{ $labels.target }} needs
      {{ with %(required)s | query }}{{ . | first | value | printf "%%.0f" }}{{ end }}
      synchronous standby(s) and misses {{ $value | printf "%%.0f" }}
      %(settings)s:
      commits that wait for a synchronous standby hang.
    ||| % { required: q('pgrepl_sync_standbys_required'), settings: syncSettings },

    local archiveDesc = |||
      {{ $labels.target }}:
      {{ with %(failed)s | query }}{{ . | first | value | printf "%%.0f" }}{{ else }}no{{ end }}
      failed archive_command runs in the last %(window)s,
      {{ with %(pending)s | query }}{{ . | first | value | printf "%%.0f" }}{{ else }}an unknown number of{{ end }}
      .ready WAL files waiting
      {{- with %(oldest)s | query }},
      the oldest for {{ . | first | value | humanizeDuration }}{{ end }}.
      Unarchived WAL stays in pg_wal until archiving succeeds.
    ||| % {
      failed: q('increase(pgrepl_archiver_failed_total', after='[%s])' % c.archiveFailuresWindow),
      window: h(c.archiveFailuresWindow),
      pending: q('pgrepl_archiver_pending_wal_files'),
      oldest: q('time() - pgrepl_archiver_oldest_pending_timestamp_seconds'),
    },
    local oldest = sel('pgrepl_archiver_oldest_pending_timestamp_seconds'),
    local pending = sel('pgrepl_archiver_pending_wal_files'),

    local standbyMemoryText =
      local s = u.seconds(c.standbyMemory);
      if s % 3600 == 0 then '%d hour%s' % [s / 3600, if s == 3600 then '' else 's'] else h(c.standbyMemory),

    groups+: [
      {
        name: 'pg-replication.alerts',
        rules: [
          // ------------------------------------------------------------------
          // Exporter health
          // ------------------------------------------------------------------
          alert(
            'PgReplTargetDown',
            'critical',
            |||
              (%(pgreplUp)s == 0)
              or
              (%(up)s == 0)
              or
              absent(%(up)s)
            ||| % { pgreplUp: sel('pgrepl_up'), up: u.up(c) },
            'The exporter cannot collect replication metrics from a PostgreSQL server.',
            |||
              {{ if $labels.target -}}
              pg_replication_exporter could not query {{ $labels.target }} for more than %(for)s
              ({{ with %(errors)s | query }}{{ . | first | value | printf "%%.0f" }}{{ else }}unknown number of{{ end }} failed collections since the exporter started).
              The server is down, refuses connections, or the monitoring role lost its rights.
              Alerts about its replication are silenced while it is down.
              {{- else -}}
              Prometheus cannot scrape pg_replication_exporter
              {{ with $labels.instance }}at {{ . }}{{ else }}(no target of job "{{ $labels.job }}" is up or configured){{ end }}:
              replication of every server it watches is unmonitored.
              {{- end }}
            ||| % { 'for': h(c.targetDownFor), errors: q('pgrepl_collect_errors_total') },
            c.targetDownFor,
            section('Exporter health', |||
              pgrepl_up == 0: the exporter runs but cannot query the server.
              up == 0 / absent(up): Prometheus cannot scrape the exporter itself, or
              has no such scrape job (_config.pgreplSelector of the mixin).
            |||),
          ),

          alert(
            'PgReplCollectionStale',
            'warning',
            |||
              (
                timestamp(%(last)s)
                - %(last)s
              )
              > clamp_min(%(factor)s * %(interval)s, %(min)s)
            ||| % {
              last: sel('pgrepl_last_collect_success_timestamp_seconds'),
              interval: sel('pgrepl_collect_interval_seconds'),
              factor: u.num(c.collectionStaleFactor),
              min: u.num(c.collectionStaleMinSeconds),
            },
            'The exporter serves replication metrics of a server that are no longer fresh.',
            |||
              The last successful collection from {{ $labels.target }} is {{ $value | humanizeDuration }} old,
              more than %(factor)s collection intervals
              {{- with %(interval)s | query }} of {{ . | first | value | humanizeDuration }}{{ end }}
              (at least %(min)s), while Prometheus still scrapes the exporter:
              its collection hangs or takes longer than the interval, and the values shown for it are old.
            ||| % {
              factor: u.num(c.collectionStaleFactor),
              interval: q('pgrepl_collect_interval_seconds'),
              min: u.humanSeconds(c.collectionStaleMinSeconds),
            },
            c.collectionStaleFor,
            |||
              The age of the last success, measured at scrape time (timestamp() of
              the sample), so a long scrape interval does not add to it. A target
              that fails outright fires PgReplTargetDown, which inhibits this one.
            |||,
          ),

          alert(
            'PgReplConfigReloadFailed',
            'warning',
            '%s == 0' % sel('pgrepl_config_last_reload_successful'),
            'The last configuration reload of the exporter failed.',
            |||
              pg_replication_exporter {{ $labels.instance }} refused the configuration it was asked to reload
              {{- with %(since)s | query }};
              it still runs the configuration it loaded at {{ . | first | value | humanizeTimestamp }}{{ end }}.
              The exporter log names the error.
            ||| % { since: q('pgrepl_config_last_reload_success_timestamp_seconds', ['instance']) },
            c.configReloadFailedFor,
          ),

          alert(
            'PgReplCollectorRestarted',
            'warning',
            'increase(%s[%s]) > 0' % [sel('pgrepl_collector_restarts_total'), c.collectorRestartsWindow],
            "A collection task of the exporter died and was restarted.",
            |||
              The collection task of {{ $labels.target }} died in the last %(window)s
              ({{ $value | printf "%%.0f" }} time(s)) and the exporter's watchdog restarted it.
              This is a bug of pg_replication_exporter: please report it with the exporter log.
            ||| % { window: h(c.collectorRestartsWindow) },
          ),

          alert(
            'PgReplMissingPrivileges',
            'warning',
            '%s == 1' % sel('pgrepl_privilege_missing'),
            "The exporter's monitoring role lacks a privilege it needs.",
            |||
              The monitoring role of pg_replication_exporter lacks {{ $labels.privilege }} on {{ $labels.target }}
              (for more than %(for)s).
              {{ if eq $labels.privilege "pg_read_all_stats" -}}
              The details of pg_stat_replication and pg_stat_wal_receiver read NULL: whether its standbys
              stream cannot be told, so the cluster view does not judge them and PgReplStandbyDisconnected
              stays silent for them.
              {{- else -}}
              The WAL directory and pending-archive families of this server are missing.
              {{- end }}
              GRANT pg_monitor TO the role on the primary.
            ||| % { 'for': h(c.missingPrivilegesFor) },
            c.missingPrivilegesFor,
          ),

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

          // ------------------------------------------------------------------
          // Replication slots
          // ------------------------------------------------------------------
          alert(
            'PgReplSlotInactive',
            'warning',
            '%s == 0' % sel('pgrepl_slot_active'),
            'A replication slot has no consumer.',
            |||
              Slot {{ $labels.slot_name }} ({{ $labels.slot_type }}) on {{ $labels.target }} has had no consumer
              for more than %(for)s and retains
              {{ with %(retained)s | query }}{{ . | first | value | humanize1024 }}B{{ else }}an unknown amount{{ end }}
              of WAL, growing with every write.
            ||| % { 'for': h(c.slotInactiveFor), retained: q('pgrepl_slot_retained_wal_bytes', ['target', 'slot_name']) },
            c.slotInactiveFor,
            section('Replication slots'),
          ),
          alert(
            'PgReplSlotRetainedWalHigh',
            'warning',
            slotRetainedExpr(c.slotRetainedWarningBytes, c.slotKeepRatioWarning, c.slotSafeWalWarningHorizonSeconds),
            'A replication slot retains a lot of WAL.',
            slotRetainedDesc,
            c.slotRetainedWarningFor,
          ),
          alert(
            'PgReplSlotRetainedWalHigh',
            'critical',
            slotRetainedExpr(c.slotRetainedCriticalBytes, c.slotKeepRatioCritical, c.slotSafeWalCriticalHorizonSeconds),
            'A replication slot retains a lot of WAL.',
            slotRetainedDesc,
            c.slotRetainedCriticalFor,
          ),
          alert(
            'PgReplSlotWalAtRisk',
            'critical',
            '%s == 1' % sel('pgrepl_slot_wal_status', 'wal_status="unreserved"'),
            'A replication slot no longer reserves the WAL its consumer needs.',
            |||
              Slot {{ $labels.slot_name }} on {{ $labels.target }} has wal_status "unreserved": it retains more
              than max_slot_wal_keep_size and will be invalidated ("lost") at the next checkpoint unless its
              consumer catches up.
            |||,
            c.slotWalAtRiskFor,
          ),
          alert(
            'PgReplSlotLost',
            'critical',
            '%s == 1' % sel('pgrepl_slot_wal_status', 'wal_status="lost"'),
            'A replication slot lost the WAL its consumer needs; the standby must be re-seeded.',
            |||
              Slot {{ $labels.slot_name }} on {{ $labels.target }} has wal_status "lost": WAL its standby still
              needs was removed. The standby can only recover from the WAL archive, otherwise it must be
              rebuilt with pg_basebackup.
            |||,
            c.slotLostFor,
          ),
          alert(
            'PgReplFailoverSlotNotSynced',
            'warning',
            |||
              (
                (
                  (%(failover)s == 1)
                  * on (%(server)s) group_left (system_identifier, cluster)
                  pgrepl:primary:info
                )
                unless on (%(sysSlot)s)
                (
                  (%(synced)s == 1)
                  * on (%(server)s) group_left (system_identifier)
                  pgrepl:standby:info
                )
              )
              and on (%(sys)s) pgrepl:standby:info
            ||| % {
              failover: sel('pgrepl_slot_failover'),
              synced: sel('pgrepl_slot_synced'),
              server: server,
              sysSlot: u.by(c, ['system_identifier', 'slot_name']),
              sys: u.by(c, ['system_identifier']),
            },
            'A failover slot has no synchronized copy on any standby.',
            |||
              Logical slot {{ $labels.slot_name }} on primary {{ $labels.target }} is marked for failover,
              but no standby of cluster {{ $labels.cluster }} has a synced copy of it. After a failover its
              subscriber would find no slot and would have to be re-created with a full copy.
            |||,
            c.failoverSlotNotSyncedFor,
            |||
              PostgreSQL 17+: a logical slot created with failover => true on a
              primary, and no monitored standby of the same system_identifier has
              a synchronized copy of it: after a failover its subscriber has no
              slot to resume from. Only where a standby of that system is
              monitored, so a DR site this Prometheus does not see stays quiet.
            |||,
          ),

          // ------------------------------------------------------------------
          // Synchronous replication
          // ------------------------------------------------------------------
          alert(
            'PgReplSyncStandbyMissing',
            'critical',
            syncMissingExpr('unless'),
            'Fewer synchronous standbys are connected than synchronous_standby_names requires.',
            syncMissingDesc,
            c.syncStandbyMissingFor,
            section('Synchronous replication', |||
              Only primaries: a standby copied with pg_basebackup carries the same
              synchronous_standby_names, which does nothing there. Critical when
              synchronous_commit makes every commit wait; warning when it is off or
              local, where only sessions that raise synchronous_commit wait.
            |||),
          ),
          alert(
            'PgReplSyncStandbyMissing',
            'warning',
            syncMissingExpr('and'),
            'Fewer synchronous standbys are connected than synchronous_standby_names requires.',
            syncMissingDesc,
            c.syncStandbyMissingFor,
          ),
          alert(
            'PgReplCommitsBlockedOnSyncStandby',
            'critical',
            '%s > %s' % [sel('pgrepl_sync_commit_oldest_wait_seconds'), u.num(c.commitsBlockedSeconds)],
            'Commits on a primary hang waiting for a synchronous standby.',
            |||
              Primary {{ $labels.target }} has
              {{ with %(waiting)s | query }}{{ . | first | value | printf "%%.0f" }}{{ else }}an unknown number of{{ end }}
              backend(s) waiting for a synchronous standby to confirm their commit, the oldest for {{ $value | humanizeDuration }}
              %(settings)s:
              their sessions hang until enough synchronous standbys confirm.
            ||| % { waiting: q('pgrepl_sync_commits_waiting'), settings: syncSettings },
            c.commitsBlockedFor,
            |||
              Backends with wait_event SyncRep, the oldest waiting longer than the
              threshold: what PgReplSyncStandbyMissing predicts, happening now.
              alerts/alertmanager.yml lets this one silence PgReplSyncStandbyMissing
              of the same target.
            |||,
          ),

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

          // ------------------------------------------------------------------
          // WAL archiving (archive_command / archive_library)
          // ------------------------------------------------------------------
          alert(
            'PgReplArchivingFailing',
            'warning',
            |||
              (
                increase(%(failed)s[%(window)s]) > 0
                and
                %(lastFailed)s
                > (%(lastArchived)s or 0 * %(lastFailed)s)
              )
              or
              (%(pending)s > %(pendingMax)s)
              or
              (time() - %(oldest)s > %(ageMax)s)
            ||| % {
              failed: sel('pgrepl_archiver_failed_total'),
              window: c.archiveFailuresWindow,
              lastFailed: sel('pgrepl_archiver_last_failed_timestamp_seconds'),
              lastArchived: sel('pgrepl_archiver_last_archived_timestamp_seconds'),
              pending: pending,
              pendingMax: u.num(c.archivePendingWarning),
              oldest: oldest,
              ageMax: u.num(c.archiveAgeWarningSeconds),
            },
            'WAL archiving is failing or falling behind.',
            archiveDesc,
            c.archiveWarningFor,
            section('WAL archiving (archive_command / archive_library)', |||
              increase() treats a counter reset (pg_stat_reset_shared('archiver'),
              crash restart) as a restart from 0, never as failures.
            |||),
          ),
          alert(
            'PgReplArchivingFailing',
            'critical',
            |||
              (%(pending)s > %(pendingMax)s)
              or
              (time() - %(oldest)s > %(ageMax)s)
            ||| % {
              pending: pending,
              pendingMax: u.num(c.archivePendingCritical),
              oldest: oldest,
              ageMax: u.num(c.archiveAgeCriticalSeconds),
            },
            'WAL archiving is failing or falling behind.',
            archiveDesc,
            c.archiveCriticalFor,
          ),

          // ------------------------------------------------------------------
          // Cluster topology
          // ------------------------------------------------------------------
          alert(
            'PgReplSplitBrain',
            'critical',
            |||
              (
                (
                  count by (%(sys)s) (count by (%(sysTarget)s) (pgrepl:primary:info)) > 1
                )
                * on (%(sys)s) group_right ()
                max by (%(sysCluster)s) (pgrepl:primary:info)
              )
              or
              (%(primaries)s > 1)
            ||| % {
              sys: u.by(c, ['system_identifier']),
              sysTarget: u.by(c, ['system_identifier', 'target']),
              sysCluster: u.by(c, ['system_identifier', 'cluster']),
              primaries: sel('pgrepl_cluster_primaries'),
            },
            'More than one primary accepts writes in the same cluster.',
            |||
              {{ if $labels.system_identifier -}}
              {{ $value | printf "%%.0f" }} servers with system_identifier {{ $labels.system_identifier }}
              (cluster {{ $labels.cluster }}) are out of recovery and accept writes:
              {{ range %(primaries)s | query }}{{ .Labels.target }} {{ end }}.
              {{- else -}}
              {{ $value | printf "%%.0f" }} reachable members of configured cluster {{ $labels.cluster }} are out
              of recovery and accept writes.
              {{- end }}
              Their histories diverge with every write.
            ||| % { primaries: u.tq(c, 'pgrepl:primary:info', ['system_identifier'], selector=false) },
            c.splitBrainFor,
            section('Cluster topology', |||
              Distinct reachable primaries per system_identifier (a count of
              targets, so two exporters scraping the same server do not count it
              twice); or, with the exporter's cluster view, per configured cluster.
            |||),
          ),
          alert(
            'PgReplNoPrimary',
            'critical',
            |||
              (
                (
                  count by (%(sysCluster)s) (pgrepl:standby:info)
                  unless on (%(sys)s) pgrepl:primary:info
                )
                and on (%(sys)s) max_over_time(pgrepl:primary:info[%(seen)s])
              )
              or
              (
                (%(membersUp)s > 0)
                and on (%(instanceJobCluster)s) (%(primaries)s == 0)
              )
            ||| % {
              sys: u.by(c, ['system_identifier']),
              sysCluster: u.by(c, ['system_identifier', 'cluster']),
              seen: c.primarySeenWithin,
              membersUp: sel('pgrepl_cluster_members_up'),
              primaries: sel('pgrepl_cluster_primaries'),
              instanceJobCluster: u.by(c, ['instance', 'job', 'cluster']),
            },
            'A replication cluster has members but no reachable primary.',
            |||
              {{ if $labels.system_identifier -}}
              {{ $value | printf "%%.0f" }} standby(s) with system_identifier {{ $labels.system_identifier }}
              (cluster {{ $labels.cluster }}) are up but no server of that cluster is a reachable primary:
              {{ range %(standbys)s | query }}{{ .Labels.target }} {{ end }}.
              {{- else -}}
              {{ $value | printf "%%.0f" }} member(s) of configured cluster {{ $labels.cluster }} are up but none
              is a primary.
              {{- end }}
              Writes fail until the primary is back or a standby is promoted.
            ||| % { standbys: u.tq(c, 'pgrepl:standby:info', ['system_identifier'], selector=false) },
            c.noPrimaryFor,
            |||
              Reachable standbys whose system_identifier has no reachable primary.
              `unless` (not `count == 0`, which never matches an empty count) makes
              zero primaries fire. Only systems whose primary this Prometheus has
              seen recently: a standby fed from an unmonitored primary (a DR
              site) is not "without primary". Or, with the cluster view, a configured
              cluster with members up and no primary.
            |||,
          ),
          alert(
            'PgReplTimelineMismatch',
            'warning',
            |||
              (
                (
                  %(timeline)s
                  * on (%(server)s) group_left (system_identifier, cluster)
                  pgrepl:standby:info
                )
                != on (%(sys)s) group_left ()
                max by (%(sys)s) (
                  %(timeline)s
                  * on (%(server)s) group_left (system_identifier)
                  pgrepl:primary:info
                )
              )
              or
              (
                %(timeline)s
                * on (%(server)s) group_left (cluster)
                (%(mismatch)s == 1)
              )
            ||| % {
              timeline: sel('pgrepl_timeline_id'),
              mismatch: sel('pgrepl_cluster_timeline_mismatch'),
              server: server,
              sys: u.by(c, ['system_identifier']),
            },
            'A standby follows another timeline than its primary.',
            |||
              Standby {{ $labels.target }} is on timeline {{ $value | printf "%%.0f" }}, its primary
              {{ with $labels.system_identifier }}{{ with %(primary)s | query }}is on timeline {{ . | first | value | printf "%%.0f" }}{{ end }}{{ else }}is on another timeline{{ end }}.
              It no longer replicates from that primary: it was not re-pointed after a failover or it diverged.
            ||| % {
              // Inside `with $labels.system_identifier`, `.` is that label.
              local keep = u.keep(c),
              primary: 'printf `max(%s * on (%s) group_left () pgrepl:primary:info{%s})` %s' % [
                sel('pgrepl_timeline_id'),
                server,
                std.join(', ', [l + '=%q' for l in keep] + ['system_identifier=%q']),
                std.join(' ', ['$labels.' + l for l in keep] + ['.']),
              ],
            },
            c.timelineMismatchFor,
            |||
              A standby on another timeline than the (highest) primary timeline of
              its system_identifier; or as the exporter's cluster view reports it.
            |||,
          ),

          // ------------------------------------------------------------------
          // Informational
          // ------------------------------------------------------------------
          alert(
            'PgReplTimelineChanged',
            'info',
            'increase(%s[%s]) > 0' % [sel('pgrepl_timeline_changes_total'), c.timelineChangedWindow],
            'A server switched to a new timeline (promotion or failover).',
            |||
              {{ $labels.target }} changed timeline in the last %(window)s and is now on timeline
              {{ with %(timeline)s | query }}{{ . | first | value | printf "%%.0f" }}{{ end }}
              ({{ with %(primary)s | query }}now a primary{{ else }}now a standby{{ end }}).
            ||| % {
              window: h(c.timelineChangedWindow),
              timeline: q('pgrepl_timeline_id'),
              primary: q('pgrepl_in_recovery', after=' == 0'),
            },
            comment=section('Informational'),
          ),
        ],
      },
    ],
  },
}
