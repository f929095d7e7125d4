// Cluster topology: split brain, no primary, timelines; informational.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  [
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
  ]
