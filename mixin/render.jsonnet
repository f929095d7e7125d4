// The files the repository ships, rendered from the mixin:
//   {path relative to the repository root: YAML text, or a dashboard object}
// `make mixin` (mixin/render.py) writes them.
// The top-level argument `config` overrides _config (tests use it);
// `mixin` replaces the mixin itself (render.py --mixin: the shipped one with
// a user's changes).
local yaml = import 'lib/yaml.libsonnet';

function(config={}, mixin=import 'mixin.libsonnet')
  // A misspelt key would silently keep its default: refuse it.
  local known = std.objectFields((import 'config.libsonnet')._config);
  local unknown = [k for k in std.objectFields(config) if !std.member(known, k)];
  assert std.length(unknown) == 0 :
         'unknown _config key(s) %s; the keys are those of mixin/config.libsonnet' % std.join(', ', unknown);
  local rendered = mixin + { _config+:: config };
  local groups = rendered.prometheusRules.groups + rendered.prometheusAlerts.groups;
  local generated = |||
    GENERATED from mixin/ by `make mixin` with the default _config of
    mixin/config.libsonnet. Do not edit: change mixin/ and run `make mixin`
    (alerts/check.sh fails when this file differs from a fresh render).
  |||;
  {
    'alerts/pg-replication.rules.yml': yaml.manifest({ groups: groups }, generated + |||

      Prometheus recording and alerting rules for pg_replication_exporter
      (PostgreSQL physical streaming replication).

      Metric contract: docs/metrics.md. Runbooks: docs/runbooks.md (English),
      docs/es/runbooks.md (Spanish). Thresholds and how to change them:
      alerts/README.md.

      Conventions
      - severity: critical pages, warning goes to the team channel, info is logged.
      - Every selector of the exporter's series carries _config.pgreplSelector.
      - Joins between families of the same target match on (instance, job,
        target), plus the cluster and group labels of _config, so that two
        exporters that scrape the same server never produce many-to-many errors.
      - A `cluster` label on cluster-wide alerts is PostgreSQL's cluster_name, or
        the system_identifier when cluster_name is empty; the pgrepl_cluster_*
        families (the exporter's configured cluster view) carry their own `cluster`.

      Check and test: alerts/check.sh
    |||),

    'deploy/kubernetes/prometheusrule.yaml': yaml.manifest({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: 'pg-replication-exporter',
        labels: {
          'app.kubernetes.io/name': 'pg-replication-exporter',
          'app.kubernetes.io/component': 'alerting-rules',
          prometheus: 'k8s',
          role: 'alert-rules',
        },
      },
      spec: { groups: groups },
    }, generated + |||

      The rules of alerts/pg-replication.rules.yml for the Prometheus Operator. It
      picks this up when its ruleSelector matches the labels below
      (kube-prometheus-stack: set ruleSelectorNilUsesHelmValues=false, or add the
      label `release: <your helm release>`).
    |||),
  } + {
    // render.py writes the JSON (jsonnet implementations print 0.9 as
    // 0.90000000000000002).
    ['dashboards/' + name]: rendered.grafanaDashboards[name]
    for name in std.objectFields(rendered.grafanaDashboards)
  }
