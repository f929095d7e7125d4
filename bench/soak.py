#!/usr/bin/env python3
"""`make soak`: tens of thousands of collections against a real primary and a
standby that stops and starts every few seconds; checks that the exporter's
memory, sessions and file descriptors do not grow.

Defaults: 20 targets (alternately the primary and the standby) at a 100 ms
interval for 300 s after a 30 s warm-up, i.e. about 60,000 collection
attempts; the standby is stopped for SOAK_FLAP seconds, then started for
SOAK_FLAP seconds, over and over. Prometheus is played by one gzip scrape
per second.

Pass: RSS growth from the end of warm-up to the end < 2 MiB, the exporter's
sessions in pg_stat_activity at the end <= at the start, >= 20,000
collections, every scrape answered 200. Exit status 1 otherwise.

Environment: SOAK_TARGETS (20), SOAK_INTERVAL ("100ms"), SOAK_SECONDS (300),
SOAK_WARMUP (30), SOAK_FLAP (4), BIN, PGBIN, BENCH_KEEP=1.
Writes bench/out/soak.md and bench/out/soak.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (REPO, Cleanup, Pair, cpu_seconds, free_port, http_get, log,  # noqa: E402
                    proc_status, series, start_ours, stop_proc)

TARGETS = int(os.environ.get("SOAK_TARGETS", "20"))
INTERVAL = os.environ.get("SOAK_INTERVAL", "100ms")
SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
WARMUP = float(os.environ.get("SOAK_WARMUP", "30"))
FLAP = float(os.environ.get("SOAK_FLAP", "4"))
OUT = os.path.join(REPO, "bench", "out")
APP = "pg_replication_exporter"
COLLECTION = "SELECT json_build_object%"


def sessions(pair: Pair, port: int) -> int:
    return int(pair.psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP}'",
                         port=port))


def collections(pair: Pair, port: int) -> int:
    return int(pair.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                         f"WHERE query LIKE '{COLLECTION}'", port=port))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Flapper(threading.Thread):
    """Stops and starts the standby until told to stop; leaves it running."""

    def __init__(self, pair: Pair) -> None:
        super().__init__(daemon=True)
        self.pair = pair
        self.halt = threading.Event()
        self.cycles = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.pair.pg_ctl(self.pair.standby_dir, "stop")
                self.halt.wait(FLAP)
                self.pair.pg_ctl(self.pair.standby_dir, "start")
                self.cycles += 1
                self.halt.wait(FLAP)
        except Exception as e:  # noqa: BLE001 - reported in the summary
            self.error = str(e)


def main() -> int:
    cleanup = Cleanup()
    t_start = time.monotonic()
    pair = Pair.start(cleanup, free_port(), free_port())
    port = free_port()
    ports = (pair.primary_port, pair.standby_port)
    targets = [(f"t{i:03d}", pair.dsn(ports[i % 2])) for i in range(TARGETS)]
    log(f"exporter: {TARGETS} targets at {INTERVAL}")
    p = start_ours(cleanup, pair.root, port, targets, interval=INTERVAL, log_name="soak")

    flapper = Flapper(pair)
    flapper.start()
    log(f"warm-up {WARMUP:.0f} s with the standby flapping every {FLAP:.0f} s")
    time.sleep(WARMUP)

    # The start of the measured window: the standby must be up to count.
    def standby_up():
        try:
            return pair.psql("SELECT 1", port=pair.standby_port) == "1"
        except Exception:  # noqa: BLE001
            return False
    while not standby_up():
        time.sleep(0.2)
    time.sleep(1.0)  # the exporter's standby targets reconnect
    for prt in ports:
        pair.psql("SELECT pg_stat_statements_reset()", port=prt)
    st0 = proc_status(p.pid)
    start = {"rss_kib": st0["VmRSS"], "hwm_kib": st0["VmHWM"], "fds": fds(p.pid),
             "threads": st0["Threads"], "sessions_primary": sessions(pair, pair.primary_port),
             "sessions_standby": sessions(pair, pair.standby_port), "cpu_s": cpu_seconds(p.pid)}
    log(f"start: {start}")
    c0 = collections(pair, pair.primary_port)
    standby_calls = 0  # the standby's counters survive clean restarts (pg_stat_statements.save)

    trend, scrapes, failed, t0 = [], 0, 0, time.monotonic()
    next_trend = t0
    while time.monotonic() - t0 < SECONDS:
        r = http_get(port, gzip_ok=True)
        scrapes += 1
        failed += r.status != 200
        if time.monotonic() >= next_trend:
            st = proc_status(p.pid)
            trend.append((round(time.monotonic() - t0), st["VmRSS"], fds(p.pid)))
            next_trend += 30
        time.sleep(1.0)

    flapper.halt.set()
    flapper.join()
    while not standby_up():
        time.sleep(0.2)
    time.sleep(3.0)  # let every target collect again after the last restart
    text = http_get(port).text()
    errors = sum(v for _, v in series(text, "pgrepl_collect_errors_total"))
    up = sum(v for _, v in series(text, "pgrepl_up"))
    st1 = proc_status(p.pid)
    end = {"rss_kib": st1["VmRSS"], "hwm_kib": st1["VmHWM"], "fds": fds(p.pid),
           "threads": st1["Threads"], "sessions_primary": sessions(pair, pair.primary_port),
           "sessions_standby": sessions(pair, pair.standby_port), "cpu_s": cpu_seconds(p.pid)}
    standby_calls = collections(pair, pair.standby_port)
    primary_calls = collections(pair, pair.primary_port) - c0
    trend.append((round(time.monotonic() - t0), st1["VmRSS"], end["fds"]))
    log(f"end: {end}")
    stop_proc(p)

    elapsed = time.monotonic() - t0
    total = primary_calls + standby_calls
    growth_kib = end["rss_kib"] - start["rss_kib"]
    sess_start = start["sessions_primary"] + start["sessions_standby"]
    sess_end = end["sessions_primary"] + end["sessions_standby"]
    checks = {
        "rss_growth_below_2MiB": growth_kib < 2048,
        "no_session_leak": sess_end <= sess_start and sess_end <= 2 * TARGETS,
        "at_least_20000_collections": total >= 20000,
        "every_scrape_200": failed == 0,
        "all_targets_up_at_end": up == TARGETS,
        "standby_flapped": flapper.cycles >= 3 and flapper.error is None,
    }
    res = {
        "targets": TARGETS, "interval": INTERVAL, "seconds": elapsed, "warmup": WARMUP,
        "flap_seconds": FLAP, "standby_restarts": flapper.cycles, "flapper_error": flapper.error,
        "collections_primary": primary_calls, "collections_standby": standby_calls,
        "collections_total": total, "collect_errors_total": errors, "scrapes": scrapes,
        "failed_scrapes": failed, "start": start, "end": end, "rss_growth_kib": growth_kib,
        "cpu_share": (end["cpu_s"] - start["cpu_s"]) / elapsed, "trend": trend,
        "checks": checks, "wall_s": time.monotonic() - t_start,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "soak.json"), "w") as f:
        json.dump(res, f, indent=2)
    L = [
        "# Soak",
        "",
        f"{TARGETS} targets (alternately primary and standby) at {INTERVAL} for {elapsed:.0f} s "
        f"after a {WARMUP:.0f} s warm-up; the standby stopped and started {flapper.cycles} times "
        f"({FLAP:.0f} s down, {FLAP:.0f} s up); one gzip scrape per second.",
        "",
        "| figure | start (after warm-up) | end |",
        "|---|---:|---:|",
        f"| VmRSS MiB | {start['rss_kib'] / 1024:.2f} | {end['rss_kib'] / 1024:.2f} |",
        f"| VmHWM MiB | {start['hwm_kib'] / 1024:.2f} | {end['hwm_kib'] / 1024:.2f} |",
        f"| open file descriptors | {start['fds']} | {end['fds']} |",
        f"| threads | {start['threads']} | {end['threads']} |",
        f"| exporter sessions on the primary | {start['sessions_primary']} | "
        f"{end['sessions_primary']} |",
        f"| exporter sessions on the standby | {start['sessions_standby']} | "
        f"{end['sessions_standby']} |",
        "",
        f"- RSS growth: **{growth_kib / 1024:+.2f} MiB** (limit +2 MiB)",
        f"- Successful collections (pg_stat_statements): **{total:,}** "
        f"({primary_calls:,} primary, {standby_calls:,} standby); failed collections "
        f"(pgrepl_collect_errors_total, whole run): {errors:,.0f}",
        f"- Exporter CPU over the window: {res['cpu_share'] * 100:.1f}% of one core",
        f"- Scrapes: {scrapes}, non-200: {failed}",
        "- RSS / fds trend (s, KiB, fds): " + ", ".join(f"({a}, {b}, {c})" for a, b, c in trend),
        "",
        "| check | result |",
        "|---|---|",
    ] + [f"| {k} | {'pass' if v else '**FAIL**'} |" for k, v in checks.items()]
    md = "\n".join(L) + "\n"
    with open(os.path.join(OUT, "soak.md"), "w") as f:
        f.write(md)
    print(md)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
