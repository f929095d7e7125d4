#!/usr/bin/env bash
# Checks the monitoring mixin and what it renders (the alerting rules, the
# dashboards, the PrometheusRule), the rules' unit tests, the runbooks, the
# example Alertmanager configuration and the end-to-end assets.
#
#   alerts/check.sh            (from anywhere; `make test` calls it)
#
# Needs promtool and amtool on PATH (PROMTOOL / AMTOOL override them), and
# python3 with a jsonnet implementation for mixin/render.py (make deps).
# The live inhibition checks also need prometheus-alertmanager (ALERTMANAGER),
# curl and jq; without them they are reported as skipped, not passed.
# Prints one line per check and, last, "N passed, M failed"; exits non-zero
# when any check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROMTOOL=${PROMTOOL:-promtool}
AMTOOL=${AMTOOL:-amtool}
ALERTMANAGER=${ALERTMANAGER:-prometheus-alertmanager}
AM_CONFIG=alerts/alertmanager.yml
RULES=(alerts/*.rules.yml)
TESTS=(alerts/tests/*.yml)
RUNBOOK_EN=docs/runbooks.md
RUNBOOK_ES=docs/es/runbooks.md
RUNBOOK_BASE=https://github.com/pg-replication-exporter/pg_replication_exporter/blob/main/docs/runbooks.md

passed=0
failed=0
skipped=0
work=$(mktemp -d)
am_pid=
cleanup() {
  if [[ -n $am_pid ]]; then
    kill "$am_pid" 2>/dev/null || true
    wait "$am_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# check DESCRIPTION COMMAND...: runs COMMAND, shows its output only on failure.
check() {
  local what=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
    sed 's/^/     /' "$work/out"
  fi
}

skip() {
  skipped=$((skipped + 1))
  echo "skip $1"
}

# Alert names, one per line, sorted and unique.
alert_names() {
  grep -hE '^ *- alert: ' "${RULES[@]}" | awk '{print $3}' | sort -u
}

# ---------------------------------------------------------------------------
# Mixin: the committed files are its render with the default _config
# ---------------------------------------------------------------------------
CUSTOM_CONFIG=mixin/tests/custom-config.libsonnet
CUSTOM_TEST=mixin/tests/custom.test.yml
render_is_fresh() {
  python3 mixin/render.py --out "$work/render" >/dev/null || return 1
  local f rc=0
  while IFS= read -r f; do
    f=${f#"$work/render/"}
    if ! diff -u "$f" "$work/render/$f"; then
      echo "$f differs from a fresh render of mixin/: run \`make mixin\` and commit"
      rc=1
    fi
  done < <(find "$work/render" -type f | sort)
  return $rc
}
check "alerts/, dashboards/ and deploy/kubernetes/prometheusrule.yaml are the mixin's render (make mixin)" render_is_fresh

# The same mixin with another job, a Kubernetes cluster label, a lower lag
# threshold and another runbook site.
render_custom() {
  python3 mixin/render.py --config "$CUSTOM_CONFIG" --out "$work/custom" >/dev/null &&
    cp "$CUSTOM_TEST" "$work/custom/alerts/"
}
check "mixin renders with $CUSTOM_CONFIG" render_custom

# A wrong _config is refused with exit 2 and one line naming the key.
refuses() {
  local config=$1 expect=$2 rc=0
  printf '%s\n' "$config" >"$work/bad.libsonnet"
  python3 mixin/render.py --config "$work/bad.libsonnet" --out "$work/bad" 2>"$work/bad.err" >/dev/null || rc=$?
  [[ $rc -eq 2 ]] || { echo "exit $rc, expected 2"; cat "$work/bad.err"; return 1; }
  [[ $(wc -l <"$work/bad.err") -eq 1 ]] || { echo "more than one line:"; cat "$work/bad.err"; return 1; }
  grep -qF -- "$expect" "$work/bad.err" || { echo "no '$expect' in:"; cat "$work/bad.err"; return 1; }
}
# Without --out, render.py writes nothing: it must never overwrite the
# committed files by accident (`make mixin` passes --out . on purpose).
needs_out() {
  local rc=0 before after
  before=$(git status --porcelain -- alerts dashboards deploy 2>/dev/null || true)
  python3 mixin/render.py >/dev/null 2>"$work/noout.err" || rc=$?
  after=$(git status --porcelain -- alerts dashboards deploy 2>/dev/null || true)
  [[ $rc -eq 2 ]] || { echo "exit $rc, expected 2"; cat "$work/noout.err"; return 1; }
  grep -qF -- "--out" "$work/noout.err" || { echo "no '--out' in:"; cat "$work/noout.err"; return 1; }
  [[ $before == "$after" ]] || { echo "render.py without --out changed the repository"; return 1; }
}
check "render.py without --out refuses and writes nothing" needs_out
check "render.py refuses a misspelt _config key" refuses "{ lagByteWarning: 1 }" "unknown _config key(s) lagByteWarning"
check "render.py refuses a duration that is not one" refuses "{ lagBytesFor: '5 minutes' }" "_config.lagBytesFor must be a duration"
check "render.py refuses clusterLabel 'cluster'" refuses "{ clusterLabel: 'cluster' }" "_config.clusterLabel must not be 'cluster'"
check "promtool check rules --lint=all on the render with $CUSTOM_CONFIG" \
  "$PROMTOOL" check rules --lint=all --lint-fatal "$work/custom/alerts/pg-replication.rules.yml"
check "promtool test rules $CUSTOM_TEST (labels, threshold, runbook of $CUSTOM_CONFIG)" \
  "$PROMTOOL" test rules "$work/custom/alerts/$(basename "$CUSTOM_TEST")"

# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------
check "promtool check rules --lint=all ${RULES[*]}" "$PROMTOOL" check rules --lint=all --lint-fatal "${RULES[@]}"

# promtool reads an aliased `expr: *name` as the metric name "name" and
# accepts it: the rule then never fires. No YAML anchors or aliases here.
no_yaml_aliases() {
  ! grep -nE '^[^#]*:[[:space:]]+[&*][A-Za-z_]' "${RULES[@]}"
}
check "rules use no YAML anchors or aliases" no_yaml_aliases

# Every alert: severity critical|warning|info, a summary ending in a period,
# a description, a runbook_url to docs/runbooks.md#<lowercase alert name>.
lint_alerts() {
  awk -v base="$RUNBOOK_BASE" '
    function finish() {
      if (name == "") return
      if (sev !~ /^(critical|warning|info)$/) { print name ": severity \"" sev "\""; bad = 1 }
      if (summary == "" || summary !~ /\.$/) { print name ": summary must end with a period: " summary; bad = 1 }
      if (!desc) { print name ": no description"; bad = 1 }
      if (url != base "#" tolower(name)) { print name ": runbook_url " url; bad = 1 }
    }
    /^ *- (alert|record): / { finish(); name = ($2 == "alert:") ? $3 : ""; sev = ""; summary = ""; desc = 0; url = ""; next }
    name != "" && /^ *severity: / { sev = $2 }
    name != "" && /^ *summary: / { sub(/^ *summary: */, ""); summary = $0 }
    name != "" && /^ *description: / { desc = 1 }
    name != "" && /^ *runbook_url: / { url = $2 }
    END { finish(); exit bad }
  ' "${RULES[@]}"
}
check "every alert has severity, summary, description and runbook_url" lint_alerts

# ---------------------------------------------------------------------------
# Unit tests
# ---------------------------------------------------------------------------
check "promtool test rules ${TESTS[*]}" "$PROMTOOL" test rules "${TESTS[@]}"

# Every alert has a case where it fires and one where it stays silent.
test_coverage() {
  local name rc=0
  for name in $(alert_names); do
    if ! awk -v n="$name" '$0 ~ "alertname: " n "$" { getline; if ($0 ~ /exp_alerts:$/) f = 1 } END { exit !f }' "${TESTS[@]}"; then
      echo "$name: no test case where it fires"
      rc=1
    fi
    if ! awk -v n="$name" '$0 ~ "alertname: " n "$" { getline; if ($0 ~ /exp_alerts: \[\]/) f = 1 } END { exit !f }' "${TESTS[@]}"; then
      echo "$name: no test case where it stays silent"
      rc=1
    fi
  done
  return $rc
}
check "every alert is tested firing and silent" test_coverage

# ---------------------------------------------------------------------------
# Runbooks
# ---------------------------------------------------------------------------
runbook_headings() {
  grep -E '^## ' "$1" | sed 's/^## //' | sort
}
runbooks_cover_alerts() {
  local f rc=0
  for f in "$RUNBOOK_EN" "$RUNBOOK_ES"; do
    if [[ ! -f $f ]]; then
      echo "$f: missing"
      rc=1
      continue
    fi
    if ! diff <(alert_names) <(runbook_headings "$f" | grep -E '^PgRepl'); then
      echo "$f: the '## PgRepl...' headings differ from the alert names (< alerts, > runbook)"
      rc=1
    fi
  done
  return $rc
}
check "docs/runbooks.md and docs/es/runbooks.md have a section per alert" runbooks_cover_alerts
same_headings() {
  [[ -f $RUNBOOK_EN && -f $RUNBOOK_ES ]] || { echo "missing runbook file"; return 1; }
  diff <(grep -E '^## ' "$RUNBOOK_EN") <(grep -E '^## ' "$RUNBOOK_ES")
}
check "English and Spanish runbooks have the same section headings" same_headings

# ---------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------
check "amtool check-config $AM_CONFIG" "$AMTOOL" check-config "$AM_CONFIG"

# route RECEIVER LABEL=VALUE...: the alert with these labels goes to RECEIVER.
route() {
  local receiver=$1
  shift
  check "route $* -> $receiver" \
    "$AMTOOL" config routes test --config.file="$AM_CONFIG" --verify.receivers="$receiver" "$@"
}
route pager alertname=PgReplStandbyLagBytesHigh severity=critical target=pg1
route pager alertname=PgReplSplitBrain severity=critical cluster=main system_identifier=7300000000000000001
route pager alertname=PgReplTargetDown severity=critical job=pg_replication_exporter
route team-warnings alertname=PgReplStandbyLagBytesHigh severity=warning target=pg1
route team-warnings alertname=PgReplSlotInactive severity=warning target=pg1 slot_name=standby1_slot
route info-log alertname=PgReplTimelineChanged severity=info target=pg1
route team-warnings alertname=SomethingElse
# A wrong expectation must fail (guards against a verify flag that checks nothing).
wrong_receiver_fails() {
  ! "$AMTOOL" config routes test --config.file="$AM_CONFIG" --verify.receivers=pager severity=warning target=pg1
}
check "route test fails on a wrong receiver" wrong_receiver_fails

# Inhibitions, on a real Alertmanager on loopback.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
if command -v "$ALERTMANAGER" >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
  am_port=$(free_port)
  "$ALERTMANAGER" --config.file="$AM_CONFIG" --storage.path="$work/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    >"$work/am.log" 2>&1 &
  am_pid=$!
  am_url="http://127.0.0.1:$am_port"
  for _ in $(seq 100); do
    curl -fsS "$am_url/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  post_alerts() {
    curl -fsS -XPOST -H 'Content-Type: application/json' "$am_url/api/v2/alerts" -d '[
      {"labels": {"alertname": "PgReplTargetDown", "severity": "critical", "target": "pg1"}},
      {"labels": {"alertname": "PgReplStandbyLagBytesHigh", "severity": "warning", "target": "pg1", "application_name": "s1"}},
      {"labels": {"alertname": "PgReplTargetDown", "severity": "critical", "job": "pg_replication_exporter", "instance": "127.0.0.1:9187"}},
      {"labels": {"alertname": "PgReplSplitBrain", "severity": "critical", "cluster": "main", "system_identifier": "1"}},
      {"labels": {"alertname": "PgReplSlotRetainedWalHigh", "severity": "warning", "target": "pg2", "slot_name": "a"}},
      {"labels": {"alertname": "PgReplSlotRetainedWalHigh", "severity": "critical", "target": "pg2", "slot_name": "a"}},
      {"labels": {"alertname": "PgReplSlotRetainedWalHigh", "severity": "warning", "target": "pg2", "slot_name": "b"}},
      {"labels": {"alertname": "PgReplSlotLost", "severity": "critical", "target": "pg3", "slot_name": "c"}},
      {"labels": {"alertname": "PgReplSlotInactive", "severity": "warning", "target": "pg3", "slot_name": "c"}},
      {"labels": {"alertname": "PgReplSplitBrain", "severity": "critical", "cluster": "billing", "instance": "127.0.0.1:9839", "job": "pg_replication_exporter"}},
      {"labels": {"alertname": "PgReplNoPrimary", "severity": "critical", "cluster": "orders", "instance": "127.0.0.1:9839", "job": "pg_replication_exporter"}},
      {"labels": {"alertname": "PgReplTimelineMismatch", "severity": "warning", "target": "pg5", "cluster": "main", "system_identifier": "1"}},
      {"labels": {"alertname": "PgReplTimelineMismatch", "severity": "warning", "target": "pg5", "cluster": "billing", "instance": "127.0.0.1:9839", "job": "pg_replication_exporter"}},
      {"labels": {"alertname": "PgReplTimelineMismatch", "severity": "warning", "target": "pg6", "cluster": "billing", "instance": "127.0.0.1:9839", "job": "pg_replication_exporter"}},
      {"labels": {"alertname": "PgReplCollectionStale", "severity": "warning", "target": "pg1"}},
      {"labels": {"alertname": "PgReplCollectionStale", "severity": "warning", "target": "pg2"}},
      {"labels": {"alertname": "PgReplCommitsBlockedOnSyncStandby", "severity": "critical", "target": "pg7"}},
      {"labels": {"alertname": "PgReplSyncStandbyMissing", "severity": "critical", "target": "pg7"}},
      {"labels": {"alertname": "PgReplSyncStandbyMissing", "severity": "critical", "target": "pg8"}}
    ]'
  }
  check "alertmanager accepts alerts on 127.0.0.1:$am_port" post_alerts
  # state ALERTNAME SEVERITY TARGET SLOT EXPECTED(active|suppressed)
  state() {
    local got
    got=$(curl -fsS "$am_url/api/v2/alerts" | jq -r --arg a "$1" --arg s "$2" --arg t "$3" --arg l "$4" \
      '.[] | select(.labels.alertname == $a and .labels.severity == $s
                    and (.labels.target // "") == $t and (.labels.slot_name // "") == $l) | .status.state')
    [[ $got == "$5" ]] || { echo "state of $1/$2/$3/$4 is '$got', expected '$5'"; return 1; }
  }
  # by_form ALERTNAME TARGET SYSTEM_IDENTIFIER EXPECTED: the two forms of a topology alert.
  by_form() {
    local got
    got=$(curl -fsS "$am_url/api/v2/alerts" | jq -r --arg a "$1" --arg t "$2" --arg i "$3" \
      '.[] | select(.labels.alertname == $a and (.labels.target // "") == $t
                    and (.labels.system_identifier // "") == $i) | .status.state')
    [[ $got == "$4" ]] || { echo "state of $1/$2/$3 is '$got', expected '$4'"; return 1; }
  }
  check "inhibit: down target pg1 silences its lag warning" state PgReplStandbyLagBytesHigh warning pg1 "" suppressed
  check "inhibit: down target itself stays active" state PgReplTargetDown critical pg1 "" active
  check "inhibit: exporter down (no target) does not silence split brain" by_form PgReplSplitBrain "" 1 active
  check "inhibit: critical silences its warning twin" state PgReplSlotRetainedWalHigh warning pg2 a suppressed
  check "inhibit: critical does not silence another slot" state PgReplSlotRetainedWalHigh warning pg2 b active
  check "inhibit: lost slot silences 'inactive' for the same slot" state PgReplSlotInactive warning pg3 c suppressed
  check "inhibit: split brain by system_identifier silences its cluster-view form" by_form PgReplSplitBrain "" "" suppressed
  check "inhibit: no primary from the cluster view alone stays active" by_form PgReplNoPrimary "" "" active
  check "inhibit: timeline mismatch of pg5 pages once" by_form PgReplTimelineMismatch pg5 "" suppressed
  check "inhibit: timeline mismatch of pg6 (cluster view only) stays active" by_form PgReplTimelineMismatch pg6 "" active
  check "inhibit: down target pg1 silences its stale-collection warning" state PgReplCollectionStale warning pg1 "" suppressed
  check "inhibit: stale collection of pg2 (target up) stays active" state PgReplCollectionStale warning pg2 "" active
  check "inhibit: commits blocked on pg7 silence its missing sync standby" state PgReplSyncStandbyMissing critical pg7 "" suppressed
  check "inhibit: commits blocked on pg7 stay active" state PgReplCommitsBlockedOnSyncStandby critical pg7 "" active
  check "inhibit: missing sync standby of pg8 (no blocked commits) stays active" state PgReplSyncStandbyMissing critical pg8 "" active
else
  skip "live inhibition checks (need $ALERTMANAGER, curl and jq)"
fi

# ---------------------------------------------------------------------------
# End-to-end assets
# ---------------------------------------------------------------------------
mkdir -p "$work/e2e"
check "make-fast-rules.sh writes rules promtool accepts" \
  alerts/e2e/make-fast-rules.sh alerts/pg-replication.rules.yml "$work/e2e/fast.rules.yml"
fast_rules_are_fast() {
  ! grep -nE '^ *for: ' "$work/e2e/fast.rules.yml" | grep -v 'for: 2s$' &&
    ! grep -noE '\[[0-9]+[mhdwy]\]' "$work/e2e/fast.rules.yml"
}
check "fast rules: every for: is 2s, every window in seconds" fast_rules_are_fast
cp alerts/e2e/fast-scenario.test.yml "$work/e2e/"
check "promtool test rules alerts/e2e/fast-scenario.test.yml (e2e scenario on the fast rules)" \
  "$PROMTOOL" test rules "$work/e2e/fast-scenario.test.yml"
sed -e 's/@EXPORTER_PORT@/19187/g' -e 's/@ALERTMANAGER_PORT@/19093/g' \
  -e "s#@RULES_FILE@#$work/e2e/fast.rules.yml#g" alerts/e2e/prometheus.yml.in >"$work/e2e/prometheus.yml"
check "promtool check config on the filled-in alerts/e2e/prometheus.yml.in" \
  "$PROMTOOL" check config "$work/e2e/prometheus.yml"

echo
if [[ $skipped -gt 0 ]]; then
  echo "($skipped skipped)"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
