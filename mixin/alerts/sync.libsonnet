// Synchronous replication.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

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
  };

  local syncSettings = std.rstripChars(|||
    {{- with %s | query }}
    (synchronous_standby_names = '{{ (. | first).Labels.synchronous_standby_names }}',
    synchronous_commit = {{ (. | first).Labels.synchronous_commit }}){{ end }}
  ||| % q('pgrepl_settings_info'), '\n');

  local syncMissingDesc = |||
    Primary {{ $labels.target }} needs
    {{ with %(required)s | query }}{{ . | first | value | printf "%%.0f" }}{{ end }}
    synchronous standby(s) and misses {{ $value | printf "%%.0f" }}
    %(settings)s:
    commits that wait for a synchronous standby hang.
  ||| % { required: q('pgrepl_sync_standbys_required'), settings: syncSettings };

  [
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
  ]
