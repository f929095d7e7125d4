// The mixin's _config for the topology end-to-end test
// (tests/alert_rules_e2e.rs, topologies_page_only_when_broken): thresholds
// low enough that a healthy delayed standby would page if the rules did not
// judge it against its recovery_min_apply_delay, and that blocked commits
// page within seconds.
{
  replayDelayWarningSeconds: 10,
  commitsBlockedSeconds: 5,
}
