// Replica freshness: the SLO's multi-window burn-rate alerts (the recording
// rules are in rules/freshness.libsonnet) and the heartbeat, the one
// end-to-end measure of a standby's lag.
local u = import '../lib/utils.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  local objective = u.num(c.freshnessObjective);
  local percent(x) = u.num(x * 100) + ' %';
  local budget = '(1 - %s)' % objective;
  // A query of the alert's own SLI series: a target's (instance, target)
  // or a cluster view's (cluster, standby, view); a label the series does
  // not have is matched as empty.
  local ratio(w) = u.tq(c, 'pgrepl:standby_freshness:error_ratio' + w,
                        ['instance', 'target', 'cluster', 'standby', 'view']);
  local burnDesc(text) = |||
    {{ if $labels.target -}}
    Standby {{ $labels.target }}
    {{- else -}}
    Expected standby {{ $labels.standby }} of cluster {{ $labels.cluster }} (cluster view)
    {{- end }} was not fresh (down, unknown, or its heartbeat lag, else its replay delay,
    more than %(threshold)s beyond recovery_min_apply_delay) during
    %(text)s
  ||| % {
    threshold: u.humanSeconds(c.freshnessThresholdSeconds),
    text: std.rstripChars(text, '\n'),
  };
  local ratioText(w, words) =
    '{{ with %s | query }}{{ . | first | value | humanizePercentage }}{{ else }}an unknown share{{ end }} of the last %s'
    % [ratio(w), words];

  local heartbeatExpr(threshold) = |||
    (
      %(lag)s
      > %(threshold)s + (%(min)s or 0 * %(lag)s)
    )
    unless on (%(server)s)
    (
      %(failing)s
    )
  ||| % {
    lag: sel('pgrepl_heartbeat_lag_seconds'),
    min: sel('pgrepl_recovery_min_apply_delay_seconds'),
    threshold: u.num(threshold),
    server: server,
    failing: std.rstripChars(promql.indent(promql.heartbeatWriterFailingTargets(c), 2), '\n'),
  };
  local heartbeatDesc(severity, threshold) = |||
    The last heartbeat standby {{ $labels.target }} replayed was written on the primary
    {{ $value | humanizeDuration }} ago
    {{- with %(min)s | query }} (configured recovery_min_apply_delay {{ . | first | value | humanizeDuration }}){{ end }}:
    its data is that old. %(severity)s above %(threshold)s beyond the configured delay, for %(for)s;
    the heartbeat's writer writes, so the standby (or its link to the primary) is behind.
  ||| % {
    min: q('pgrepl_recovery_min_apply_delay_seconds', after=' > 0'),
    severity: if severity == 'warning' then 'Warning' else 'Critical',
    threshold: u.humanSeconds(threshold),
    'for': h(c.heartbeatLagFor),
  };

  [
    // ------------------------------------------------------------------
    // Replica freshness SLO
    // ------------------------------------------------------------------
    alert(
      'PgReplFreshnessBudgetBurn',
      'critical',
      |||
        (
          pgrepl:standby_freshness:error_ratio1h > 14.4 * %(budget)s
          and
          pgrepl:standby_freshness:error_ratio5m > 14.4 * %(budget)s
        )
        or
        (
          pgrepl:standby_freshness:error_ratio6h > 6 * %(budget)s
          and
          pgrepl:standby_freshness:error_ratio30m > 6 * %(budget)s
        )
      ||| % { budget: budget },
      'A standby is not fresh often enough and burns the error budget of its freshness SLO fast.',
      burnDesc(|||
        %(h1)s (%(m5)s)
        and %(h6)s (%(m30)s).
        The %(objective)s objective over 30 days allows %(allowed)s; 14.4 times that over an hour
        (2 %% of the 30-day budget) or 6 times over 6 hours (5 %%) pages.
      ||| % {
        objective: percent(c.freshnessObjective),
        allowed: percent(1 - c.freshnessObjective),
        h1: ratioText('1h', 'hour'),
        m5: ratioText('5m', '5 minutes'),
        h6: ratioText('6h', '6 hours'),
        m30: ratioText('30m', '30 minutes'),
      }),
      comment=section('Replica freshness SLO', |||
        Multi-window burn-rate alerts of the Google SRE workbook ("Alerting on
        SLOs") on the per-standby SLI of mixin/rules/freshness.libsonnet: a
        long window says enough budget burnt, the short one (1/12 of it) that
        it still burns, so the alert resolves soon after the standby is fresh
        again. No `for:`: the windows are the wait. At %(objective)s, a page
        at 14.4x over 1 hour fires after about 52 s of staleness in an hour.
        Every rule evaluation is one sample: evaluate every 15 to 30 s.
      ||| % { objective: percent(c.freshnessObjective) }),
    ),
    alert(
      'PgReplFreshnessBudgetBurn',
      'warning',
      |||
        pgrepl:standby_freshness:error_ratio3d > %(budget)s
        and
        pgrepl:standby_freshness:error_ratio6h > %(budget)s
      ||| % { budget: budget },
      'A standby is not fresh often enough and burns the error budget of its freshness SLO fast.',
      burnDesc(|||
        %(d3)s and %(h6)s.
        The %(objective)s objective over 30 days allows %(allowed)s: at this rate the 30-day budget
        is used up before the 30 days are over.
      ||| % {
        d3: ratioText('3d', '3 days'),
        h6: ratioText('6h', '6 hours'),
        objective: percent(c.freshnessObjective),
        allowed: percent(1 - c.freshnessObjective),
      }),
    ),

    // ------------------------------------------------------------------
    // Heartbeat (end-to-end lag)
    // ------------------------------------------------------------------
    alert(
      'PgReplHeartbeatLagHigh',
      'warning',
      heartbeatExpr(c.heartbeatLagWarningSeconds),
      "The last heartbeat a standby replayed is old, and so is its data.",
      heartbeatDesc('warning', c.heartbeatLagWarningSeconds),
      c.heartbeatLagFor,
      section('Heartbeat (end-to-end lag)', |||
        pgrepl_heartbeat_lag_seconds: the age of the heartbeat row a standby
        has replayed, written on the primary every second by the exporter
        ([clusters.NAME.heartbeat]); true also when the primary is idle or the
        standby cut off. Not while the writer fails: the heartbeat then ages
        on every standby, and PgReplHeartbeatWriterFailing says why.
      |||),
    ),
    alert(
      'PgReplHeartbeatLagHigh',
      'critical',
      heartbeatExpr(c.heartbeatLagCriticalSeconds),
      "The last heartbeat a standby replayed is old, and so is its data.",
      heartbeatDesc('critical', c.heartbeatLagCriticalSeconds),
      c.heartbeatLagFor,
    ),
    alert(
      'PgReplHeartbeatWriterFailing',
      'warning',
      promql.heartbeatWriterFailing(c),
      'The heartbeat of a cluster is not written, so its standbys look older than they are.',
      |||
        The heartbeat writer of cluster {{ $labels.cluster }}
        {{ with %(refusing)s | query -}}
        refuses to write into its table, which it cannot trust (the exporter log says why)
        {{- else -}}{{ with %(last)s | query -}}
        last wrote {{ . | first | value | humanizeDuration }} ago
        {{- else -}}
        has not written since the exporter started (the primary refuses it or is unreachable: the exporter log says why)
        {{- end }}{{ end }}, for more than %(for)s.
        The standbys' heartbeat lag grows without telling anything about them;
        their freshness is judged on their replay delay meanwhile.
      ||| % {
        refusing: u.tq(c, 'pgrepl_heartbeat_writer_refusing', ['instance', 'cluster'], ' == 1'),
        last: u.tq(c, 'time() - pgrepl_heartbeat_writer_last_success_timestamp_seconds', ['instance', 'cluster']),
        'for': h(c.heartbeatWriterFailingFor),
      },
      c.heartbeatWriterFailingFor,
      |||
        Refusing (an untrusted table), never written since the exporter
        started, or last written more than %s ago.
      ||| % u.humanSeconds(c.heartbeatWriterStaleSeconds),
    ),
    alert(
      'PgReplHeartbeatUnavailable',
      'warning',
      |||
        (%(rejected)s == 1)
        or
        label_replace(
          (
            max without (state) (%(standby)s == 1)
            * on (%(byCluster)s) group_left ()
            (0 * %(refusing)s)
          )
          unless on (%(server)s) %(lag)s
          unless on (%(server)s) %(rejected)s,
          "reason", "no_heartbeat", "", ""
        )
      ||| % {
        rejected: sel('pgrepl_heartbeat_rejected'),
        standby: sel('pgrepl_cluster_member_state', 'state="standby"'),
        byCluster: u.by(c, ['instance', 'job', 'cluster']),
        refusing: sel('pgrepl_heartbeat_writer_refusing'),
        server: server,
        lag: sel('pgrepl_heartbeat_lag_seconds'),
      },
      'A standby of a cluster with a heartbeat reports no heartbeat lag.',
      |||
        Standby {{ $labels.target }} reports no heartbeat lag
        {{- if eq $labels.reason "future" }}:
        the heartbeat row it replayed is more than 1 s ahead of its clock (the clocks of the
        primary and the standby are apart, or someone else writes the row)
        {{- else if eq $labels.reason "untrusted_table" }}:
        the heartbeat table is not one the exporter trusts (owner, triggers, rules, policies,
        columns: the exporter log says which)
        {{- else }} although its cluster has a heartbeat:
        it has not replayed the cluster's heartbeat row
        (the table missing on it, or nothing replicated since the writer started)
        {{- end }}, for more than %(for)s. Its freshness is judged on its replay delay meanwhile.
      ||| % { 'for': h(c.heartbeatUnavailableFor) },
      c.heartbeatUnavailableFor,
      |||
        pgrepl_heartbeat_rejected (reason future or untrusted_table); or, with
        the cluster view, a standby member of a cluster whose writer is
        configured that has neither a heartbeat lag nor a rejection (reason
        no_heartbeat): a silent heartbeat must not look like a fresh one.
      |||,
    ),
  ]
