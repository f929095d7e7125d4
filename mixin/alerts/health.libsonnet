// Exporter health: targets down, stale collections, reloads, restarts,
// privileges.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  [
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
  ]
