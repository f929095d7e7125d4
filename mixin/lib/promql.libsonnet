// PromQL that both the recording rules and the alerts need, built once from
// the mixin's `_config` (`c`), so that an alert and the rule a dashboard or
// another rule reads can never disagree.
local u = import 'utils.libsonnet';

{
  // Clusters whose heartbeat writer does not write (one series per
  // cluster of the cluster view, labels of pgrepl_heartbeat_writer_refusing):
  // it refuses its table, has never written since the exporter started, or
  // last wrote more than heartbeatWriterStaleSeconds ago. A heartbeat that
  // is not written ages on every standby although they may be current:
  // such a heartbeat says nothing about them.
  heartbeatWriterFailing(c)::
    local refusing = u.sel(c, 'pgrepl_heartbeat_writer_refusing');
    local last = u.sel(c, 'pgrepl_heartbeat_writer_last_success_timestamp_seconds');
    |||
      (%(refusing)s == 1)
      or
      (time() - %(last)s > %(stale)s)
      or
      (%(refusing)s unless on (%(byCluster)s) %(last)s)
    ||| % {
      refusing: refusing,
      last: last,
      stale: u.num(c.heartbeatWriterStaleSeconds),
      byCluster: u.by(c, ['instance', 'job', 'cluster']),
    },

  // The members of those clusters, one series per target (labels
  // instance, job, cluster, target), for `unless on (<server>)`.
  heartbeatWriterFailingTargets(c)::
    |||
      max without (state) (%(members)s)
      * on (%(byCluster)s) group_left ()
      (
        %(failing)s
      )
    ||| % {
      members: u.sel(c, 'pgrepl_cluster_member_state'),
      byCluster: u.by(c, ['instance', 'job', 'cluster']),
      failing: std.rstripChars($.indent($.heartbeatWriterFailing(c), 2), '\n'),
    },

  // Every line of a ||| block but the first indented by n spaces (for a
  // block inserted at an indented place of another one).
  indent(s, n)::
    local lines = std.split(std.rstripChars(s, '\n'), '\n');
    std.join('\n', [lines[0]] + [
      if l == '' then l else std.repeat(' ', n) + l
      for l in lines[1:]
    ]) + '\n',
}
