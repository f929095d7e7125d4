// A non-default _config for the tests (alerts/check.sh renders the mixin
// with it and runs custom.test.yml on the result; tests/it/static_assets.rs
// checks its dashboards): another scrape job, a Kubernetes cluster label
// and a group label kept by every join and aggregation, a lower lag
// threshold and duration, a tighter freshness threshold, runbooks on
// another site.
{
  pgreplSelector: 'job="pgrepl"',
  clusterLabel: 'k8s_cluster',
  groupLabels: ['region'],
  lagBytesWarning: 64 * 1024 * 1024,
  lagBytesFor: '2m',
  freshnessThresholdSeconds: 30,
  runbookURLPattern: 'https://wiki.example.com/runbooks/%s',
}
