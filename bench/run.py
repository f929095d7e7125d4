#!/usr/bin/env python3
"""`make bench`: pg_replication_exporter side by side with Debian's
prometheus-postgres-exporter, against the same primary/standby, in one run.

Measures, in this order:
  1. /metrics throughput and latency under wrk (same concurrency for both);
  2. peak resident memory (VmHWM) of both processes;
  3. database work per collection (ours) / per scrape (theirs):
     pg_stat_statements calls, pg_stat_database xact_commit and sessions;
  4. cost of one collection with 1..1000 slots and 1..50 walsenders
     (collection duration, /metrics size, render time from benches/render.rs);
  5. 1, 10, 100 targets at a 1 s interval: CPU share and memory (both);
  6. freshness: age of the data served against the interval.

Writes bench/out/results.md and bench/out/results.json. Environment knobs:
  BENCH_DURATION (wrk seconds, 10), BENCH_CONCURRENCY (16), BENCH_REPEAT
  (wrk runs per row of 1, the median p99 run reported; 3), BENCH_WINDOW
  (seconds per measurement window in 3 and 5, 20), BENCH_QUICK=1 (shorter),
  BIN, POSTGRES_EXPORTER, PGBIN, BENCH_KEEP=1 (keep the data directory).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BIN, REPO, THEIRS_BIN, Cleanup, Pair, cpu_seconds, free_port,  # noqa: E402
                    http_get, log, median, pct, proc_status, run, series, start_ours,
                    start_theirs, stop_proc)

QUICK = bool(os.environ.get("BENCH_QUICK"))
DURATION = int(os.environ.get("BENCH_DURATION", "5" if QUICK else "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
# wrk runs per row of section 1; the run with the median p99 is reported,
# so that one stall of the shared machine does not make the row.
REPEAT = int(os.environ.get("BENCH_REPEAT", "1" if QUICK else "3"))
WINDOW = float(os.environ.get("BENCH_WINDOW", "8" if QUICK else "20"))
OUT = os.path.join(REPO, "bench", "out")
THEIRS_MULTI_FLAGS = ("--no-collector.database", "--no-collector.bgwriter")

results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# ----------------------------------------------------------------- machine

def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    free = run(["free", "-h"]).stdout.strip()
    pg = run(["psql", "--version"]).stdout.strip()
    try:
        theirs = subprocess.run([THEIRS_BIN, "--version"], capture_output=True,
                                text=True).stderr.splitlines()[0]
    except Exception:  # noqa: BLE001
        theirs = "?"
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    ours = run([BIN, "--version"]).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": model, "free": free, "kernel": platform.release(),
        "postgresql": pg, "postgres_exporter": theirs,
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0], "ours": ours,
    }


# --------------------------------------------------------------- 1. wrk

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        raise ValueError(v)
    return float(m.group(1)) * UNIT[m.group(2)]


def wrk(port: int, gzip_ok: bool, threads: int, conns: int) -> dict:
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{DURATION}s", "--latency",
           "--timeout", "10s"]
    if gzip_ok:
        cmd += ["-H", "Accept-Encoding: gzip"]
    cmd.append(f"http://127.0.0.1:{port}/metrics")
    out = run(cmd).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": to_ms(lat["50"]), "p90_ms": to_ms(lat["90"]),
            "p99_ms": to_ms(lat["99"]), "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1) if sock else "", "cmd": " ".join(cmd)}


def measure_http(ours_port, theirs_port, ours, theirs) -> None:
    rows = []
    # (wrk threads, connections, gzip). One wrk thread drives the 16
    # connections so that, on a 2-core machine, the load generator and the
    # exporter each have a core; the -t2 row shows the oversubscribed case.
    loads = [(1, CONCURRENCY, False), (1, CONCURRENCY, True), (2, CONCURRENCY, False),
             (1, 1, True)]
    for threads, conns, gz in loads:
        r = {"gzip": gz, "threads": threads, "conns": conns}
        for who, port, p in (("ours", ours_port, ours), ("theirs", theirs_port, theirs)):
            runs = []
            for i in range(REPEAT):
                log(f"1. wrk -t{threads} -c{conns} {DURATION}s against {who} (gzip={gz}), "
                    f"run {i + 1}/{REPEAT}")
                c0 = cpu_seconds(p.pid)
                t0 = time.monotonic()
                one = wrk(port, gz, threads, conns)
                one["cpu_share"] = (cpu_seconds(p.pid) - c0) / (time.monotonic() - t0)
                runs.append(one)
            runs.sort(key=lambda x: x["p99_ms"])
            r[who] = dict(runs[len(runs) // 2])
            r[who]["p99_runs_ms"] = [x["p99_ms"] for x in runs]
            r[who]["body_bytes"] = len(http_get(port, gzip_ok=gz).body)
        rows.append(r)
    results["http"] = rows


# ----------------------------------------------------------- 3. DB work

def db_counters(pair: Pair) -> dict:
    row = pair.psql(
        "SELECT d.xact_commit, d.xact_rollback, d.sessions, "
        "(SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r "
        "  ON r.oid = s.userid WHERE r.rolname = 'monitor'), "
        "(SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r "
        "  ON r.oid = s.userid WHERE r.rolname = 'pgexp'), "
        "(SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
        "  WHERE query LIKE 'SELECT json_build_object%') "
        "FROM pg_stat_database d WHERE d.datname = 'postgres'")
    v = [float(x) for x in row.split("|")]
    return {"xact_commit": v[0], "xact_rollback": v[1], "sessions": v[2],
            "ours_calls": v[3], "theirs_calls": v[4], "collections": v[5]}


def delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


def measure_db_work(pair: Pair, workdir: str) -> None:
    """Neither exporter runs on entry. PostgreSQL 15 flushes a backend's
    counters to pg_stat_database at most once a second while it is busy and
    up to 10 s after it went idle, or at once when the session ends: windows
    are closed by ending the session (theirs) or measured in steady state
    over many cycles (ours, one cycle a second)."""
    log(f"3. baseline window (nothing running), {WINDOW:.0f} s")
    time.sleep(1.0)
    b0 = db_counters(pair)
    time.sleep(WINDOW)
    b1 = db_counters(pair)
    base = delta(b0, b1)
    base_x = base["xact_commit"] + base["xact_rollback"]

    log(f"3. ours: one target, 1 s interval, {WINDOW:.0f} s window")
    port = free_port()
    p = start_ours(pair.cleanup, workdir, port, [("primary", pair.dsn(pair.primary_port))],
                   interval="1s", log_name="dbwork")
    time.sleep(3.5)
    o0 = db_counters(pair)
    time.sleep(WINDOW)
    o1 = db_counters(pair)
    stop_proc(p)
    ours = delta(o0, o1)
    cycles = ours["collections"]

    n = 10 if QUICK else 20
    log(f"3. theirs: {n} scrapes")
    tport = free_port()
    tp = start_theirs(pair.cleanup, workdir, tport, [pair.url(pair.primary_port, "pgexp")],
                      log_name="dbwork-theirs")
    http_get(tport)  # opens its connection(s)
    time.sleep(11.0)  # idle backends flush their counters after 10 s
    pair.psql("SELECT pg_stat_statements_reset()")
    t0 = db_counters(pair)
    for _ in range(n):
        http_get(tport)
    stop_proc(tp)  # the sessions end and flush their counters
    time.sleep(1.0)
    t1 = db_counters(pair)
    theirs = delta(t0, t1)

    top = pair.psql(
        "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements s "
        "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'pgexp' ORDER BY calls DESC, query")
    results["db_work"] = {
        "baseline": base,
        "ours": {"cycles": cycles,
                 "statements_per_cycle": ours["ours_calls"] / cycles,
                 "xact_per_cycle": (ours["xact_commit"] + ours["xact_rollback"] - base_x) / cycles,
                 "sessions_per_cycle": (ours["sessions"] - base["sessions"]) / cycles,
                 "raw": ours},
        "theirs": {"scrapes": n,
                   "statements_per_scrape": theirs["theirs_calls"] / n,
                   "xact_per_scrape": (theirs["xact_commit"] + theirs["xact_rollback"] - base_x) / n,
                   "sessions_per_scrape": (theirs["sessions"] - base["sessions"]) / n,
                   "raw": theirs,
                   "statements": [ln.split("|", 1) for ln in top.splitlines()]},
    }


# ------------------------------------------------------ 4. work scaling

def collect_durations(port: int, target: str, seconds: float) -> list[float]:
    """Durations of the distinct collections published during `seconds`."""
    seen: dict[float, float] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        text = http_get(port).text()
        ts = [v for l, v in series(text, "pgrepl_last_collect_success_timestamp_seconds")
              if l.get("target") == target]
        du = [v for l, v in series(text, "pgrepl_collect_duration_seconds")
              if l.get("target") == target]
        if ts and du:
            seen[ts[0]] = du[0]
        time.sleep(0.05)
    return list(seen.values())


def scaling_row(pair, ours_port, theirs_port, slots, walsenders, label) -> dict:
    secs = 4.0 if QUICK else 8.0
    time.sleep(1.2)  # two collections at 500 ms see the new state
    durs = collect_durations(ours_port, "primary", secs)
    plain = http_get(ours_port)
    gz = http_get(ours_port, gzip_ok=True)
    # Latency of a cached /metrics answer (the render happens once per collection).
    lat = [http_get(ours_port, gzip_ok=True).seconds for _ in range(30)]
    t_lat, t_size = [], 0
    for _ in range(3 if QUICK else 5):
        r = http_get(theirs_port)
        t_lat.append(r.seconds)
        t_size = len(r.body)
    n_slot_series = len(series(plain.text(), "pgrepl_slot_active"))
    n_ws_series = len(series(plain.text(), "pgrepl_standby_lag_bytes"))
    return {
        "label": label, "slots": slots, "walsenders": walsenders,
        "ours_collect_ms_p50": median(durs) * 1e3, "ours_collect_ms_max": max(durs) * 1e3,
        "ours_collections": len(durs),
        "ours_bytes": len(plain.body), "ours_gzip_bytes": len(gz.body),
        "ours_http_ms_p50": median(lat) * 1e3,
        "slot_series": n_slot_series, "walsender_series": n_ws_series,
        "theirs_scrape_ms_p50": median(t_lat) * 1e3, "theirs_bytes": t_size,
    }


def measure_scaling(pair: Pair, workdir: str, theirs_port: int) -> None:
    port = free_port()
    p = start_ours(pair.cleanup, workdir, port, [("primary", pair.dsn(pair.primary_port))],
                   interval="500ms", log_name="scaling")
    rows = []
    for n in (1, 10, 100, 1000):
        log(f"4. {n} slots, 1 walsender")
        pair.set_slots(n)
        rows.append(scaling_row(pair, port, theirs_port, n, 1,
                                f"{n} slot{'s' if n > 1 else ''}, 1 walsender"))
    pair.set_slots(1)
    for w in (10, 50):
        log(f"4. 1 slot, {w} walsenders")
        pair.set_walsenders(w)
        rows.append(scaling_row(pair, port, theirs_port, 1, w, f"1 slot, {w} walsenders"))
    log("4. 1000 slots and 50 walsenders")
    pair.set_slots(1000)
    rows.append(scaling_row(pair, port, theirs_port, 1000, 50, "1000 slots + 50 walsenders"))
    stop_proc(p)
    pair.set_walsenders(1)
    pair.set_slots(1)
    results["scaling"] = rows


def render_bench() -> None:
    log("4. render time: cargo bench --bench render")
    env = dict(os.environ, RENDER_BENCH_MS="150" if QUICK else "400")
    try:
        # A target directory of its own: `cargo bench` rebuilds the exporter
        # binary with the test build's features (the watchdog's fault hooks)
        # and would replace the release binary the later sections start.
        env["CARGO_TARGET_DIR"] = os.path.join(REPO, "target", "bench-render")
        out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "render", "--", "--tsv"],
                             cwd=os.environ.get("BENCH_CRATE_DIR", REPO), env=env, capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as e:
        log(f"cargo bench failed, render table skipped:\n{e.stderr[-2000:]}")
        results["render"] = []
        return
    lines = [ln.split("\t") for ln in out.strip().splitlines() if "\t" in ln]
    head, body = lines[0], lines[1:]
    results["render"] = [dict(zip(head, r)) for r in body]


# ------------------------------------------------- 5/6. many targets, freshness

def targets_for(pair: Pair, n: int) -> list[tuple[str, str]]:
    ports = (pair.primary_port, pair.standby_port)
    return [(f"t{i:03d}", pair.dsn(ports[i % 2])) for i in range(n)]


def observe(p, port: int, seconds: float, ours: bool, interval: float = 1.0) -> dict:
    """Scrapes about once per interval with jitter (as Prometheus would, with
    gzip); returns CPU share, memory and the age of the data at each scrape."""
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    ages, scrape_ms, failed = [], [], 0
    while time.monotonic() - t0 < seconds:
        r = http_get(port, gzip_ok=True, timeout=120)
        scrape_ms.append(r.seconds * 1e3)
        failed += r.status != 200
        if ours:
            now = time.time()
            ages += [now - v for _, v in
                     series(r.text(), "pgrepl_last_collect_success_timestamp_seconds")]
        time.sleep(max(0.0, interval * random.uniform(0.5, 1.5) - r.seconds))
    wall = time.monotonic() - t0
    st = proc_status(p.pid)
    return {"cpu_share": (cpu_seconds(p.pid) - c0) / wall, "hwm_kib": st["VmHWM"],
            "rss_kib": st["VmRSS"], "threads": st["Threads"], "scrapes": len(scrape_ms),
            "failed_scrapes": failed,
            "scrape_ms_p50": median(scrape_ms), "scrape_ms_max": max(scrape_ms),
            "age_p50": median(ages) if ages else None, "age_p99": pct(ages, 99) if ages else None,
            "age_max": max(ages) if ages else None, "age_mean": sum(ages) / len(ages) if ages
            else None, "age_samples": len(ages)}


def measure_targets(pair: Pair, workdir: str) -> None:
    rows = []
    for n in (1, 10, 100):
        tg = targets_for(pair, n)
        log(f"5. ours: {n} targets at 1 s, {WINDOW:.0f} s")
        port = free_port()
        p = start_ours(pair.cleanup, workdir, port, tg, interval="1s", log_name=f"targets{n}")
        time.sleep(3)
        ours = observe(p, port, WINDOW, True)
        durs = [v for _, v in series(http_get(port).text(), "pgrepl_collect_duration_seconds")]
        ours["collect_ms_p50"] = median(durs) * 1e3
        ours["collect_ms_max"] = max(durs) * 1e3
        stop_proc(p)
        log(f"5. theirs: {n} DSNs, one scrape per second, {WINDOW:.0f} s")
        ports = (pair.primary_port, pair.standby_port)
        # One DSN per target on its own loopback address (it keys servers by
        # host:port); its two collectors without a server label are off, or
        # several DSNs make every scrape fail with duplicate series.
        dsns = [pair.url(ports[i % 2], "pgexp", f"127.0.0.{i // 2 + 1}") for i in range(n)]
        tport = free_port()
        tp = start_theirs(pair.cleanup, workdir, tport, dsns, log_name=f"theirs{n}",
                          flags=THEIRS_MULTI_FLAGS)
        http_get(tport, timeout=120)  # first scrape opens the connections
        theirs = observe(tp, tport, WINDOW, False)
        stop_proc(tp)
        rows.append({"targets": n, "ours": ours, "theirs": theirs})
    results["targets"] = rows


# ------------------------------------------------------------- report

def fmt_ratio(a: float, b: float, digits: int = 1) -> str:
    if not b:
        return "n/a"
    return f"{a / b:.{digits}f}x"


def report() -> str:
    m = results["machine"]
    L = []
    w = L.append
    w("# pg_replication_exporter vs postgres_exporter: benchmark results\n")
    w(f"Run {results['started']} → {results['finished']} ({results['elapsed_s']:.0f} s).\n")
    w("## Machine\n")
    w(f"- CPU: {m['cpu']}, nproc = {m['nproc']}; kernel {m['kernel']}")
    w(f"- {m['postgresql']}; {m['postgres_exporter']}; {m['wrk']}; {m['ours']}")
    w("- Memory (`free -h`):\n\n```\n" + m["free"] + "\n```\n")

    w(f"## 1. `/metrics` throughput and latency (wrk, {DURATION} s per row)\n")
    w("`-t1 -c16` is the main load: 16 concurrent clients, driven by one wrk thread so "
      "that on a 2-core machine wrk and the exporter (one worker thread by default, "
      "`--runtime.worker-threads`) have a core each. `-t2 -c16` is the same 16 clients with "
      "two wrk threads: three busy threads on two cores, so requests now and then wait out "
      "a scheduler time slice. `-t1 -c1` is one client scraping back to back. Each row is "
      f"run {REPEAT} times per exporter, back to back; the run with the median p99 is shown "
      "(req/s, p50, p90 and CPU from that same run) and the last column lists every run's "
      "p99. Exporter CPU is its utime+stime over the run, in cores.\n")
    w("| wrk | encoding | exporter | req/s | p50 ms | p90 ms | p99 ms | body bytes | exporter CPU "
      "| non-2xx | p99 of each run ms |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results["http"]:
        enc = ("gzip" if r["gzip"] else "identity")
        enc = f"-t{r['threads']} -c{r['conns']} | {enc}"
        for who in ("ours", "theirs"):
            x = r[who]
            w(f"| {enc} | {who} | {x['rps']:.0f} | {x['p50_ms']:.3f} | {x['p90_ms']:.3f} | "
              f"{x['p99_ms']:.3f} | {x['body_bytes']} | {x['cpu_share'] * 100:.0f}% | "
              f"{x['non2xx']} | {' / '.join(f'{v:.3f}' for v in x['p99_runs_ms'])} |")
        w(f"| {enc} | **ours / theirs** | **{fmt_ratio(r['ours']['rps'], r['theirs']['rps'])}** | "
          f"{fmt_ratio(r['ours']['p50_ms'], r['theirs']['p50_ms'], 4)} | | "
          f"{fmt_ratio(r['ours']['p99_ms'], r['theirs']['p99_ms'], 4)} | | | | |")
    w("")

    mem = results["memory"]
    w("## 2. Peak resident memory (VmHWM), one target, after the load of section 1\n")
    w("| exporter | VmHWM MiB | VmRSS MiB | threads |")
    w("|---|---:|---:|---:|")
    for who in ("ours", "theirs"):
        x = mem[who]
        w(f"| {who} | {x['VmHWM'] / 1024:.1f} | {x['VmRSS'] / 1024:.1f} | {x['Threads']} |")
    w(f"| **ours / theirs** | **{fmt_ratio(mem['ours']['VmHWM'], mem['theirs']['VmHWM'], 2)}** "
      f"| {fmt_ratio(mem['ours']['VmRSS'], mem['theirs']['VmRSS'], 2)} | |\n")

    d = results["db_work"]
    o, t = d["ours"], d["theirs"]
    w("## 3. Database work per collection (ours) / per scrape (theirs)\n")
    w(f"Ours: {o['cycles']:.0f} collections of one target at 1 s; theirs: {t['scrapes']} scrapes. "
      "Statements from `pg_stat_statements` (by role), transactions from `pg_stat_database` "
      "`xact_commit + xact_rollback` minus an idle baseline window, sessions from "
      "`pg_stat_database.sessions`.\n")
    w("| exporter | statements | transactions | new sessions |")
    w("|---|---:|---:|---:|")
    w(f"| ours, per collection | {o['statements_per_cycle']:.2f} | {o['xact_per_cycle']:.2f} | "
      f"{o['sessions_per_cycle']:.2f} |")
    w(f"| theirs, per scrape | {t['statements_per_scrape']:.2f} | {t['xact_per_scrape']:.2f} | "
      f"{t['sessions_per_scrape']:.2f} |")
    w(f"| **ours / theirs** | **{fmt_ratio(o['statements_per_cycle'], t['statements_per_scrape'], 3)}** "
      f"| **{fmt_ratio(o['xact_per_cycle'], t['xact_per_scrape'], 3)}** | |\n")
    w("<details><summary>postgres_exporter's statements during the window</summary>\n")
    w("| calls | statement |")
    w("|---:|---|")
    for calls, q in t["statements"]:
        w(f"| {calls} | `{q.replace('|', '/')}` |")
    w("\n</details>\n")

    w("## 4. Cost of one collection as the work grows (one target, 500 ms interval)\n")
    w("Ours: `pgrepl_collect_duration_seconds` of the distinct collections seen over the "
      "window (query + parse + publish); theirs: the duration of a whole scrape (it queries "
      "on scrape). `/metrics` HTTP = a cached gzip answer of ours.\n")
    w("| workload | collections | ours collect p50 ms | max ms | theirs scrape p50 ms | "
      "ours / theirs | ours bytes (gzip) | theirs bytes | ours /metrics HTTP p50 ms |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["scaling"]:
        w(f"| {r['label']} | {r['ours_collections']} | {r['ours_collect_ms_p50']:.2f} | "
          f"{r['ours_collect_ms_max']:.2f} | {r['theirs_scrape_ms_p50']:.1f} | "
          f"{fmt_ratio(r['ours_collect_ms_p50'], r['theirs_scrape_ms_p50'], 3)} | "
          f"{r['ours_bytes']} ({r['ours_gzip_bytes']}) | {r['theirs_bytes']} | "
          f"{r['ours_http_ms_p50']:.2f} |")
    w("")
    if results.get("render"):
        w("Render time of the exposition (`cargo bench --bench render`, synthetic snapshots, "
          "median of a timing loop; done once per collection, not per request):\n")
        w("| case | targets | slots | walsenders | series | bytes | gzip bytes | render µs | "
          "gzip µs |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["render"]:
            w(f"| {r['case']} | {r['targets']} | {r['slots']} | {r['walsenders']} | {r['series']} "
              f"| {r['bytes']} | {r['gzip_bytes']} | {r['render_us']} | {r['gzip_us']} |")
        w("")

    w(f"## 5. Many targets at a 1 s interval ({WINDOW:.0f} s window, one gzip scrape per "
      "second with jitter)\n")
    w("Targets alternate between the primary and the standby. postgres_exporter gets the same "
      "number of DSNs (`DATA_SOURCE_NAME`, comma-separated, each on its own 127.0.0.x address "
      "because it tells servers apart by host:port) and one scrape per second, with `"
      + " ".join(THEIRS_MULTI_FLAGS) + "` (with them on, two DSNs already make every scrape "
      "fail with duplicate `pg_scrape_collector_*` series).\n")
    w("| targets | ours CPU | theirs CPU | CPU ours / theirs | ours VmHWM MiB | theirs VmHWM MiB "
      "| mem ours / theirs | ours collect p50 / max ms | theirs scrape p50 ms |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["targets"]:
        o, t = r["ours"], r["theirs"]
        w(f"| {r['targets']} | {o['cpu_share'] * 100:.1f}% | {t['cpu_share'] * 100:.1f}% | "
          f"{fmt_ratio(o['cpu_share'], t['cpu_share'], 2)} | {o['hwm_kib'] / 1024:.1f} | "
          f"{t['hwm_kib'] / 1024:.1f} | {fmt_ratio(o['hwm_kib'], t['hwm_kib'], 2)} | "
          f"{o['collect_ms_p50']:.2f} / {o['collect_ms_max']:.2f} | {t['scrape_ms_p50']:.1f} |")
    w("")

    w("## 6. Freshness: age of the data served (interval 1 s)\n")
    w("Age = scrape time − `pgrepl_last_collect_success_timestamp_seconds`, every target, every "
      "scrape of section 5. postgres_exporter reads the database during the scrape: its data is as old as "
      "the scrape is long, which is the price paid on every request.\n")
    w("| targets | samples | mean s | p50 s | p99 s | max s | max / interval | theirs: scrape "
      "p50 ms |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["targets"]:
        o = r["ours"]
        w(f"| {r['targets']} | {o['age_samples']} | {o['age_mean']:.3f} | {o['age_p50']:.3f} | "
          f"{o['age_p99']:.3f} | {o['age_max']:.3f} | {o['age_max'] / 1.0:.2f} | "
          f"{r['theirs']['scrape_ms_p50']:.1f} |")
    w("")
    return "\n".join(L)


def main() -> int:
    for tool in ("wrk", "psql", THEIRS_BIN, BIN):
        if not shutil.which(tool) and not os.path.exists(tool):
            print(f"missing {tool}: run `make release` and `./scripts/install-deps.sh bench`",
                  file=sys.stderr)
            return 2
    t_start = time.monotonic()
    cleanup = Cleanup()
    results["machine"] = machine()
    pair = Pair.start(cleanup, free_port(), free_port())
    workdir = pair.root

    ours_port, theirs_port = free_port(), free_port()
    ours = start_ours(cleanup, workdir, ours_port, [("primary", pair.dsn(pair.primary_port))],
                      interval="1s", log_name="http")
    theirs = start_theirs(cleanup, workdir, theirs_port,
                          [pair.url(pair.primary_port, "pgexp")], log_name="http-theirs")
    http_get(theirs_port)
    time.sleep(1.5)
    measure_http(ours_port, theirs_port, ours, theirs)
    results["memory"] = {"ours": proc_status(ours.pid), "theirs": proc_status(theirs.pid)}
    stop_proc(ours)
    stop_proc(theirs)

    measure_db_work(pair, workdir)
    theirs_port = free_port()
    theirs = start_theirs(cleanup, workdir, theirs_port, [pair.url(pair.primary_port, "pgexp")],
                          log_name="scaling-theirs")
    measure_scaling(pair, workdir, theirs_port)
    stop_proc(theirs)
    measure_targets(pair, workdir)
    render_bench()

    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["elapsed_s"] = time.monotonic() - t_start
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    md = report()
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"wrote {OUT}/results.md and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
