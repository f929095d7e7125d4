"""Shared by bench/run.py and bench/soak.py: a throwaway PostgreSQL primary and
streaming standby on loopback, the exporters, HTTP and /proc helpers.

Standard library only (Python 3.11). Everything started here is registered
in `Cleanup` and stopped by it, whatever way the script ends.
"""

from __future__ import annotations

import atexit
import glob
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PGBIN = os.environ.get("PGBIN") or sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                          key=lambda p: int(p.split("/")[-2]))[-1]
BIN = os.environ.get("BIN", os.path.join(REPO, "target/release/pg_replication_exporter"))
THEIRS_BIN = os.environ.get("POSTGRES_EXPORTER", shutil.which("prometheus-postgres-exporter") or
                            "prometheus-postgres-exporter")
CLK_TCK = os.sysconf("SC_CLK_TCK")
IS_ROOT = os.geteuid() == 0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def as_pg(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd if IS_ROOT else cmd


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------- cleanup

class Cleanup:
    """Stops every process and server this run started, once."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.datadirs: list[str] = []
        self.dirs: list[str] = []
        self.done = False
        atexit.register(self.run)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._signal)

    def _signal(self, signum, _frame):
        log(f"signal {signum}: cleaning up")
        self.run()
        sys.exit(128 + signum)

    def proc(self, p: subprocess.Popen) -> subprocess.Popen:
        self.procs.append(p)
        return p

    def run(self) -> None:
        if self.done:
            return
        self.done = True
        for p in reversed(self.procs):
            stop_proc(p)
        for d in reversed(self.datadirs):
            subprocess.run(as_pg([f"{PGBIN}/pg_ctl", "-D", d, "-m", "immediate", "stop"]),
                           capture_output=True)
        if not os.environ.get("BENCH_KEEP"):
            for d in self.dirs:
                shutil.rmtree(d, ignore_errors=True)


def stop_proc(p: subprocess.Popen, timeout: float = 5.0) -> None:
    if p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ------------------------------------------------------------------ /proc data

def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime/stime are fields 14/15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reset_hwm(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux >= 4.0, needs ptrace rights)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# ------------------------------------------------------------------------ HTTP

@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    def text(self) -> str:
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body).decode()
        return self.body.decode()


def http_get(port: int, path: str = "/metrics", gzip_ok: bool = False,
             timeout: float = 30.0) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    secs = time.perf_counter() - t
    conn.close()
    return Response(r.status, body, {k.lower(): v for k, v in r.getheaders()}, secs)


SERIES_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = SERIES_RE.match(line)
        if m and m.group(1) == name:
            out.append((dict(LABEL_RE.findall(m.group(3) or "")), float(m.group(4))))
    return out


def wait_until(pred, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_err = e
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}" + (f": {last_err}" if last_err else ""))


# -------------------------------------------------------------------- the pair

@dataclass
class Pair:
    """A primary and one streaming standby, both on 127.0.0.1."""
    root: str
    primary_port: int
    standby_port: int
    cleanup: Cleanup
    receivers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def primary_dir(self) -> str:
        return os.path.join(self.root, "primary")

    @property
    def standby_dir(self) -> str:
        return os.path.join(self.root, "standby1")

    def psql(self, sql: str, port: int | None = None, user: str = "postgres") -> str:
        return run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", str(port or self.primary_port), "-U", user, "-d", "postgres",
                    "-c", sql]).stdout.strip()

    def dsn(self, port: int, user: str = "monitor") -> str:
        return f"host=127.0.0.1 port={port} user={user} dbname=postgres sslmode=disable"

    def url(self, port: int, user: str, host: str = "127.0.0.1") -> str:
        return f"postgresql://{user}@{host}:{port}/postgres?sslmode=disable"

    # -- lifecycle

    @staticmethod
    def start(cleanup: Cleanup, primary_port: int, standby_port: int,
              extra_conf: str = "") -> "Pair":
        root = tempfile.mkdtemp(prefix="pgrepl-bench.")
        cleanup.dirs.append(root)
        if IS_ROOT:
            shutil.chown(root, "postgres", "postgres")
        pair = Pair(root, primary_port, standby_port, cleanup)
        log(f"primary: initdb in {pair.primary_dir}, port {primary_port}")
        run(as_pg([f"{PGBIN}/initdb", "-D", pair.primary_dir, "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--no-sync"]))
        with open(os.path.join(pair.primary_dir, "postgresql.conf"), "a") as f:
            f.write(f"""
# 50 loopback addresses: postgres_exporter tells servers apart by host:port only.
listen_addresses = '{",".join(f"127.0.0.{i}" for i in range(1, 51))}'
port = {primary_port}
unix_socket_directories = '{root}'
cluster_name = 'primary'
max_connections = 400
wal_level = replica
max_wal_senders = 70
max_replication_slots = 1100
max_slot_wal_keep_size = 1GB
wal_log_hints = on
hot_standby = on
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 10000
# Nothing but the exporters may make transactions during the measurements.
autovacuum = off
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
{extra_conf}
""")
        with open(os.path.join(pair.primary_dir, "pg_hba.conf"), "a") as f:
            f.write("host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n")
        cleanup.datadirs.append(pair.primary_dir)
        pair.pg_ctl(pair.primary_dir, "start")
        pair.psql("CREATE USER repl WITH REPLICATION;"
                  "CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor;"
                  "CREATE ROLE pgexp LOGIN; GRANT pg_monitor TO pgexp;"
                  "CREATE EXTENSION pg_stat_statements;"
                  "SELECT pg_create_physical_replication_slot('repl_slot');")
        log(f"standby1: pg_basebackup, port {standby_port}")
        run(as_pg([f"{PGBIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port),
                   "-U", "repl", "-D", pair.standby_dir, "-R", "-X", "stream", "-c", "fast",
                   "-S", "repl_slot"]))
        with open(os.path.join(pair.standby_dir, "postgresql.auto.conf"), "a") as f:
            f.write(f"""
port = {standby_port}
cluster_name = 'standby1'
primary_conninfo = 'host=127.0.0.1 port={primary_port} user=repl application_name=standby1'
primary_slot_name = 'repl_slot'
""")
        cleanup.datadirs.append(pair.standby_dir)
        pair.pg_ctl(pair.standby_dir, "start")
        wait_until(lambda: pair.psql("SELECT count(*) FROM pg_stat_replication "
                                     "WHERE state = 'streaming'") == "1", 30, "standby streaming")
        return pair

    def pg_ctl(self, datadir: str, action: str) -> None:
        cmd = [f"{PGBIN}/pg_ctl", "-D", datadir, "-l", datadir + ".log", "-w"]
        if action == "stop":
            cmd += ["-m", "fast"]
        run(as_pg(cmd + [action]))

    # -- workload

    def set_slots(self, total: int) -> None:
        """Makes `total` physical slots exist (repl_slot plus bench_NNNN)."""
        self.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                  "WHERE slot_name LIKE 'bench\\_%' AND NOT active")
        if total > 1:
            self.psql("SELECT count(pg_create_physical_replication_slot("
                      "format('bench_%s', lpad(i::text, 4, '0')), true)) "
                      f"FROM generate_series(1, {total - 1}) i")
        got = int(self.psql("SELECT count(*) FROM pg_replication_slots"))
        assert got == total, f"{got} slots, wanted {total}"

    def set_walsenders(self, total: int) -> None:
        """Makes `total` walsenders stream: the standby plus pg_receivewal processes."""
        want = total - 1
        while len(self.receivers) > want:
            stop_proc(self.receivers.pop())
        while len(self.receivers) < want:
            d = os.path.join(self.root, f"receivewal{len(self.receivers):02d}")
            os.makedirs(d, exist_ok=True)
            p = subprocess.Popen(
                [f"{PGBIN}/pg_receivewal", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "repl", "-D", d, "--no-loop", "--no-sync", "-s", "10",
                 "-d", f"host=127.0.0.1 port={self.primary_port} user=repl "
                       f"application_name=receivewal{len(self.receivers):02d}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.receivers.append(self.cleanup.proc(p))
        wait_until(lambda: int(self.psql("SELECT count(*) FROM pg_stat_replication "
                                         "WHERE state = 'streaming'")) == total,
                   60, f"{total} walsenders streaming")


# ------------------------------------------------------------------- exporters

def start_ours(cleanup: Cleanup, workdir: str, port: int, targets: list[tuple[str, str]],
               interval: str = "1s", timeout: str | None = None,
               log_name: str = "ours") -> subprocess.Popen:
    cfg = os.path.join(workdir, f"{log_name}.toml")
    with open(cfg, "w") as f:
        f.write(f'listen_address = "127.0.0.1:{port}"\ncollect_interval = "{interval}"\n')
        if timeout:
            f.write(f'collect_timeout = "{timeout}"\n')
        for name, dsn in targets:
            f.write(f'\n[[targets]]\nname = "{name}"\ndsn = "{dsn}"\n')
    out = open(os.path.join(workdir, f"{log_name}.log"), "ab")
    p = cleanup.proc(subprocess.Popen([BIN, "--config", cfg, "--log.level", "warn"],
                                      stdout=out, stderr=out))
    names = {n for n, _ in targets}

    def all_up():
        if p.poll() is not None:
            raise RuntimeError(f"exporter exited with {p.returncode}, see {out.name}")
        up = series(http_get(port).text(), "pgrepl_up")
        return {l["target"] for l, v in up if v == 1.0} >= names
    wait_until(all_up, 60, f"{len(targets)} targets up in the exporter")
    return p


def start_theirs(cleanup: Cleanup, workdir: str, port: int, dsns: list[str],
                 log_name: str = "theirs", flags: tuple[str, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ, DATA_SOURCE_NAME=",".join(dsns))
    out = open(os.path.join(workdir, f"{log_name}.log"), "ab")
    p = cleanup.proc(subprocess.Popen(
        [THEIRS_BIN, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags],
        env=env, stdout=out, stderr=out))

    def ready():
        if p.poll() is not None:
            raise RuntimeError(f"postgres_exporter exited with {p.returncode}, see {out.name}")
        return http_get(port).status == 200
    wait_until(ready, 60, "postgres_exporter answering")
    return p


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]
