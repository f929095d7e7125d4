//! End to end: the alert rules of `alerts/` in a real Prometheus, routed to a
//! real Alertmanager, fed by the exporter watching a real primary and standby.
//!
//! Everything runs on loopback with free ports and temporary directories:
//! - the rules are the fast copy of `alerts/pg-replication.rules.yml` made by
//!   `alerts/e2e/make-fast-rules.sh` (every `for:` is 2s, windows / 60);
//! - Prometheus uses `alerts/e2e/prometheus.yml.in` (1 s scrape and
//!   evaluation) and `--rules.alert.resend-delay=1s`;
//! - Alertmanager uses the example `alerts/alertmanager.yml` (its webhook
//!   receivers point at a closed loopback port; delivery failures are fine,
//!   the test reads `GET /api/v2/alerts`).
//!
//! Scenario (see alerts/e2e/README.md): a healthy pair pages nothing; replay
//! paused on the standby plus WAL on the primary gives `PgReplReplayPaused`
//! and `PgReplStandbyLagBytesHigh`; the standby stopped gives
//! `PgReplSlotInactive` and `PgReplStandbyDisconnected`;
//! `synchronous_standby_names` naming an absent standby gives
//! `PgReplSyncStandbyMissing`.
//!
//! Binaries: `prometheus` and `prometheus-alertmanager` on PATH, or
//! `PGREPL_TEST_PROMETHEUS` / `PGREPL_TEST_ALERTMANAGER` (`make deps`
//! installs them).

use crate::harness as common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{binary, http_get, Proc};
use common::{free_port, wait_until, Exporter, Pair, StandbySpec, Topology};
use serde_json::Value;

const ALERT_WAIT: Duration = Duration::from_secs(90);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One alert as Alertmanager holds it.
#[derive(Debug, Clone)]
struct Alert {
    labels: BTreeMap<String, String>,
    state: String,
}

impl Alert {
    fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }

    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }

    fn is(&self, name: &str, target: &str) -> bool {
        self.name() == name && self.label("target") == target
    }
}

/// Prometheus and Alertmanager with the fast rules, pointed at the exporter.
struct Stack {
    prometheus: Proc,
    alertmanager: Proc,
    prom_port: u16,
    am_port: u16,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn start(exporter_port: u16) -> Stack {
        Stack::start_with_rules(
            exporter_port,
            &root().join("alerts/pg-replication.rules.yml"),
        )
    }

    /// As [`Stack::start`], with the fast copy of another rendering of the
    /// rules (the mixin with a test `_config`).
    fn start_with_rules(exporter_port: u16, rules_source: &std::path::Path) -> Stack {
        let prometheus_bin = binary("PGREPL_TEST_PROMETHEUS", "prometheus");
        let alertmanager_bin = binary("PGREPL_TEST_ALERTMANAGER", "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();

        // Fast copy of the rules.
        let rules = d.join("fast.rules.yml");
        let status = Command::new("bash")
            .arg(root().join("alerts/e2e/make-fast-rules.sh"))
            .arg(rules_source)
            .arg(&rules)
            .status()
            .expect("run make-fast-rules.sh");
        assert!(status.success(), "make-fast-rules.sh failed");

        // Alertmanager.
        let am_port = free_port();
        let alertmanager = Proc::spawn(
            &alertmanager_bin,
            &[
                format!(
                    "--config.file={}",
                    root().join("alerts/alertmanager.yml").display()
                ),
                format!("--storage.path={}", d.join("am").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".to_string(),
            ],
            d.join("alertmanager.log"),
        );
        let am_url = format!("http://127.0.0.1:{am_port}/-/ready");
        assert!(
            wait_until(Duration::from_secs(30), || http_get(&am_url, &[]).is_ok()),
            "alertmanager did not become ready:\n{}",
            alertmanager.log_tail()
        );

        // Prometheus.
        let prom_port = free_port();
        let template = fs::read_to_string(root().join("alerts/e2e/prometheus.yml.in"))
            .expect("read prometheus.yml.in");
        let config = template
            .replace("@EXPORTER_PORT@", &exporter_port.to_string())
            .replace("@ALERTMANAGER_PORT@", &am_port.to_string())
            .replace("@RULES_FILE@", &rules.display().to_string());
        let config_path = d.join("prometheus.yml");
        fs::write(&config_path, config).expect("write prometheus.yml");
        let prometheus = Proc::spawn(
            &prometheus_bin,
            &[
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", d.join("prom").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--rules.alert.resend-delay=1s".to_string(),
            ],
            d.join("prometheus.log"),
        );
        let prom_url = format!("http://127.0.0.1:{prom_port}/-/ready");
        assert!(
            wait_until(Duration::from_secs(60), || http_get(&prom_url, &[]).is_ok()),
            "prometheus did not become ready:\n{}",
            prometheus.log_tail()
        );

        Stack {
            prometheus,
            alertmanager,
            prom_port,
            am_port,
            _dir: dir,
        }
    }

    /// Instant query; the `result` array of the answer.
    fn query(&self, q: &str) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.prom_port);
        http_get(&url, &[("query", q)])
            .ok()
            .and_then(|body| serde_json::from_str::<Value>(&body).ok())
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Alerts Alertmanager holds now (active, silenced or inhibited; not resolved).
    fn alerts(&self) -> Vec<Alert> {
        let url = format!("http://127.0.0.1:{}/api/v2/alerts", self.am_port);
        let body = http_get(&url, &[]).unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}"));
        let v: Value = serde_json::from_str(&body).expect("alerts JSON");
        v.as_array()
            .expect("alerts array")
            .iter()
            .map(|a| Alert {
                labels: a["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                state: a["status"]["state"].as_str().unwrap_or("").to_string(),
            })
            .collect()
    }

    fn diagnostics(&self) -> String {
        let prom_alerts = http_get(
            &format!("http://127.0.0.1:{}/api/v1/alerts", self.prom_port),
            &[],
        )
        .unwrap_or_else(|e| e);
        format!(
            "Prometheus /api/v1/alerts: {prom_alerts}\n--- prometheus log:\n{}\n--- alertmanager log:\n{}",
            self.prometheus.log_tail(),
            self.alertmanager.log_tail()
        )
    }

    /// Polls Alertmanager until `check` holds; panics with the evidence.
    fn wait_alerts(&self, what: &str, check: impl Fn(&[Alert]) -> bool) -> Vec<Alert> {
        let deadline = Instant::now() + ALERT_WAIT;
        loop {
            let alerts = self.alerts();
            if check(&alerts) {
                return alerts;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}; Alertmanager holds:\n{}\n{}",
                    describe(&alerts),
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn describe(alerts: &[Alert]) -> String {
    if alerts.is_empty() {
        return "  (no alerts)".to_string();
    }
    alerts
        .iter()
        .map(|a| format!("  {} [{}] {:?}", a.name(), a.state, a.labels))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has(alerts: &[Alert], name: &str, target: &str) -> bool {
    alerts.iter().any(|a| a.is(name, target))
}

/// WAL on the primary: one row and a segment switch per round, so the
/// primary's position moves by at least 16 MiB a round.
fn switch_wal(primary: &common::Pg, rounds: u32) {
    primary.psql("CREATE TABLE IF NOT EXISTS alerts_e2e (i int)");
    for _ in 0..rounds {
        primary.psql("INSERT INTO alerts_e2e VALUES (1); SELECT pg_switch_wal();");
    }
}

#[test]
fn alerts_reach_alertmanager() {
    let pair = Pair::start("alerts-e2e");
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby", pair.standby.dsn()),
    ]);
    exporter.wait_for(
        "both targets up, standby streaming",
        Duration::from_secs(30),
        |m| {
            m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
                && m.get("pgrepl_up", &[("target", "standby")]) == Some(1.0)
                && m.get(
                    "pgrepl_wal_receiver_status",
                    &[("target", "standby"), ("status", "streaming")],
                ) == Some(1.0)
                && m.get("pgrepl_standbys", &[("target", "primary")]) == Some(1.0)
        },
    );
    let stack = Stack::start(exporter.port);

    // Prometheus scrapes the exporter and the recording rules produce both servers.
    assert!(
        wait_until(Duration::from_secs(60), || {
            stack
                .query(r#"up{job="pg_replication_exporter"} == 1"#)
                .len()
                == 1
                && stack.query("pgrepl:server:info").len() == 2
                && stack.query("pgrepl:standbys:by_role").len() == 2
        }),
        "Prometheus does not scrape the exporter or evaluate the rules:\n{}",
        stack.diagnostics()
    );

    // 1. A healthy pair pages nothing: over 10 s (5 times the `for:` of the
    //    fast rules), Alertmanager receives no alert at all. The 4 s before
    //    are deliberate: time for a wrong alert to go from pending to firing
    //    and reach Alertmanager before the watch starts.
    std::thread::sleep(Duration::from_secs(4));
    let healthy_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < healthy_until {
        let alerts = stack.alerts();
        assert!(
            alerts.is_empty(),
            "a healthy pair raised alerts:\n{}\n{}",
            describe(&alerts),
            stack.diagnostics()
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // 2. Replay paused on the standby, WAL written on the primary:
    //    24 segment switches = at least 368 MiB of replay lag (> 256 MiB).
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    switch_wal(&pair.primary, 24);
    let alerts = stack.wait_alerts("PgReplReplayPaused and PgReplStandbyLagBytesHigh", |a| {
        has(a, "PgReplReplayPaused", "standby") && has(a, "PgReplStandbyLagBytesHigh", "primary")
    });
    let lag = alerts
        .iter()
        .find(|a| a.is("PgReplStandbyLagBytesHigh", "primary"))
        .unwrap();
    assert_eq!(lag.label("application_name"), "standby1", "{lag:?}");
    assert_eq!(lag.label("stage"), "replay", "{lag:?}");
    assert_eq!(lag.label("severity"), "warning", "{lag:?}");
    let paused = alerts
        .iter()
        .find(|a| a.is("PgReplReplayPaused", "standby"))
        .unwrap();
    assert_eq!(paused.label("severity"), "warning", "{paused:?}");

    // Resume: both alerts resolve.
    pair.standby.psql("SELECT pg_wal_replay_resume()");
    stack.wait_alerts("the pause and lag alerts to resolve", |a| {
        !has(a, "PgReplReplayPaused", "standby") && !has(a, "PgReplStandbyLagBytesHigh", "primary")
    });

    // 3. Standby stopped: its slot on the primary loses its consumer and the
    //    primary has one standby fewer; the standby target itself is down.
    pair.standby.stop();
    let alerts = stack.wait_alerts(
        "PgReplSlotInactive, PgReplStandbyDisconnected and PgReplTargetDown",
        |a| {
            has(a, "PgReplSlotInactive", "primary")
                && has(a, "PgReplStandbyDisconnected", "primary")
                && has(a, "PgReplTargetDown", "standby")
        },
    );
    let slot = alerts
        .iter()
        .find(|a| a.is("PgReplSlotInactive", "primary"))
        .unwrap();
    assert_eq!(slot.label("slot_name"), "standby1_slot", "{slot:?}");
    let down = alerts
        .iter()
        .find(|a| a.is("PgReplTargetDown", "standby"))
        .unwrap();
    assert_eq!(down.label("severity"), "critical", "{down:?}");
    // The down standby does not silence alerts about the primary.
    for name in ["PgReplSlotInactive", "PgReplStandbyDisconnected"] {
        let a = alerts.iter().find(|a| a.is(name, "primary")).unwrap();
        assert_eq!(a.state, "active", "{a:?}");
    }

    // 4. synchronous_standby_names names a standby that is not there: commits
    //    would wait (nothing is written on the primary from here on).
    pair.primary.set_synchronous_standby_names("ghost");
    let alerts = stack.wait_alerts("PgReplSyncStandbyMissing", |a| {
        has(a, "PgReplSyncStandbyMissing", "primary")
    });
    let sync = alerts
        .iter()
        .find(|a| a.is("PgReplSyncStandbyMissing", "primary"))
        .unwrap();
    assert_eq!(sync.label("severity"), "critical", "{sync:?}");
}

/// Beyond a pair: a quorum of three direct standbys (`ANY 2`) and a
/// delayed standby cascaded from one of them. Healthy, it pages nothing,
/// although the delayed standby's replay delay is far above the (lowered)
/// threshold: the rules judge it against its `recovery_min_apply_delay`.
/// Then it breaks, one piece at a time, and exactly the right alerts come.
///
/// The rules are the mixin rendered with `alerts/e2e/topology-config.libsonnet`
/// (replay delay thresholds of 10 s and 20 s beyond the configured delay,
/// commits blocked after 5 s), made fast like the default ones.
#[test]
fn topologies_page_only_when_broken() {
    let topo = Topology::start(
        "alerts-topology",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::direct("standby3"),
            StandbySpec::direct("standby4"),
            StandbySpec::new("standby2", "standby1", "recovery_min_apply_delay = '20s'"),
        ],
    );
    topo.primary
        .set_synchronous_standby_names("ANY 2 (standby1, standby3, standby4)");
    topo.primary.psql("CREATE TABLE topo_e2e (i int)");
    let exporter = Exporter::start(&topo.targets());
    exporter.wait_for(
        "all five up, both tiers connected",
        Duration::from_secs(60),
        |m| {
            ["standby1", "standby2", "standby3", "standby4"]
                .iter()
                .all(|s| {
                    m.get(
                        "pgrepl_cluster_expected_standby_connected",
                        &[("standby", s)],
                    ) == Some(1.0)
                })
                && m.get("pgrepl_standbys_sync", &[("target", "primary")]) == Some(3.0)
        },
    );

    // The rules, rendered from the mixin with the test thresholds.
    let rendered = tempfile::tempdir().expect("temp dir");
    let status = Command::new("python3")
        .arg(root().join("mixin/render.py"))
        .arg("--config")
        .arg(root().join("alerts/e2e/topology-config.libsonnet"))
        .arg("--out")
        .arg(rendered.path())
        .stdout(Stdio::null())
        .status()
        .expect("run mixin/render.py");
    assert!(status.success(), "mixin/render.py failed");
    let stack = Stack::start_with_rules(
        exporter.port,
        &rendered.path().join("alerts/pg-replication.rules.yml"),
    );
    assert!(
        wait_until(Duration::from_secs(60), || stack
            .query("pgrepl:server:info")
            .len()
            == 5),
        "Prometheus does not evaluate the rules:\n{}",
        stack.diagnostics()
    );

    // 1. Healthy, with writes twice a second for 40 s: nothing pages,
    //    while the delayed standby sits far above 10 s of replay delay.
    let until = Instant::now() + Duration::from_secs(40);
    let (mut waiting_seen, mut delay_seen) = (false, 0.0f64);
    while Instant::now() < until {
        topo.primary.psql("INSERT INTO topo_e2e VALUES (1)");
        let alerts = stack.alerts();
        assert!(
            alerts.is_empty(),
            "a healthy cascade, delayed standby and quorum raised alerts:\n{}\n{}",
            describe(&alerts),
            stack.diagnostics()
        );
        let m = exporter.metrics();
        waiting_seen |= m.get(
            "pgrepl_replay_apply_delay_waiting",
            &[("target", "standby2")],
        ) == Some(1.0);
        delay_seen = delay_seen.max(
            m.get("pgrepl_replay_delay_seconds", &[("target", "standby2")])
                .unwrap_or(0.0),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(waiting_seen, "standby2 never waited on its apply delay");
    assert!(
        delay_seen > 15.0,
        "standby2's replay delay peaked at {delay_seen}s"
    );

    // 2. The delayed standby stops replaying: past its delay plus the
    //    threshold, it pages.
    topo.standby("standby2")
        .psql("SELECT pg_wal_replay_pause()");
    stack.wait_alerts(
        "PgReplStandbyReplayDelayHigh for the delayed standby",
        |a| has(a, "PgReplStandbyReplayDelayHigh", "standby2"),
    );
    topo.standby("standby2")
        .psql("SELECT pg_wal_replay_resume()");

    // 3. One of the three quorum standbys stops: commits go on, no
    //    synchronous replication alert.
    topo.standby("standby4").stop();
    let quiet_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < quiet_until {
        topo.primary.psql("INSERT INTO topo_e2e VALUES (2)");
        let alerts = stack.alerts();
        assert!(
            !alerts.iter().any(|a| matches!(
                a.name(),
                "PgReplSyncStandbyMissing" | "PgReplCommitsBlockedOnSyncStandby"
            )),
            "ANY 2 of 3 with one down paged about synchronous replication:\n{}",
            describe(&alerts)
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // 4. A second one stops: commits hang, and that pages.
    topo.standby("standby3").stop();
    let mut hung = topo.primary.spawn_psql("INSERT INTO topo_e2e VALUES (3)");
    stack.wait_alerts("PgReplCommitsBlockedOnSyncStandby", |a| {
        has(a, "PgReplCommitsBlockedOnSyncStandby", "primary")
            && has(a, "PgReplSyncStandbyMissing", "primary")
    });
    assert!(hung.try_wait().unwrap().is_none(), "the commit should hang");

    // 5. The middle of the cascade stops: the standby below it is cut off
    //    (it still answers, so this is not a target-down page).
    topo.standby("standby1").stop();
    stack.wait_alerts("PgReplStandbyDisconnected for the cascaded standby", |a| {
        a.iter()
            .any(|x| x.name() == "PgReplStandbyDisconnected" && x.label("standby") == "standby2")
    });
    let m = exporter.metrics();
    assert_eq!(m.get("pgrepl_up", &[("target", "standby2")]), Some(1.0));
    let _ = hung.kill();
}
