// WAL archiving (archive_command / archive_library).
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, alert = a.alert, section = a.section;

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
  };

  local oldest = sel('pgrepl_archiver_oldest_pending_timestamp_seconds');

  local pending = sel('pgrepl_archiver_pending_wal_files');

  [
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
  ]
