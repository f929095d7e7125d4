#!/usr/bin/env bash
# make demo: a throwaway primary and streaming standby (set up the way a
# DBA sets up streaming replication: replication role, physical slot,
# pg_basebackup -R -X stream, primary_slot_name), some WAL, and the
# exporter against both on :9839.
# Prometheus and Alertmanager join when their config is in alerts/.
# Ctrl-C stops everything and removes the data.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=${DEMO_DIR:-/tmp/pgrepl-demo}
PRIMARY_PORT=${PRIMARY_PORT:-55432}
STANDBY_PORT=${STANDBY_PORT:-55433}
LISTEN=${LISTEN:-0.0.0.0:9839}
PROM_PORT=${PROM_PORT:-9090}
AM_PORT=${AM_PORT:-9093}
CARGO=${CARGO:-cargo}
# The release binary where cargo puts it: CARGO_TARGET_DIR and
# build.target-dir are honoured by asking cargo, not guessed.
if [ -z "${BIN:-}" ]; then
  target_dir=$("$CARGO" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  BIN="$target_dir/release/pg_replication_exporter"
fi
if [ ! -x "$BIN" ]; then
  echo "demo: no exporter binary at $BIN: run \`make release\` (\`make demo\` does)" >&2
  exit 1
fi
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
MONITOR_PASSWORD=demo-monitor-password

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_p() { psql -X -q -At -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -c "$1"; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping the demo..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$DEMO_DIR/standby1" -m fast stop >/dev/null 2>&1 || true
  as_pg "$PGBIN/pg_ctl" -D "$DEMO_DIR/primary" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DEMO_DIR"
}
trap cleanup EXIT INT TERM

for d in primary standby1; do
  as_pg "$PGBIN/pg_ctl" -D "$DEMO_DIR/$d" -m immediate stop >/dev/null 2>&1 || true
done
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/archive"
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$DEMO_DIR"

echo "== primary: initdb on port $PRIMARY_PORT"
as_pg "$PGBIN/initdb" -D "$DEMO_DIR/primary" -U postgres -A trust -E UTF8 --no-sync >/dev/null
cat >> "$DEMO_DIR/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$DEMO_DIR'
cluster_name = 'primary'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = 1GB
wal_log_hints = on
hot_standby = on
archive_mode = on
archive_command = 'cp %p $DEMO_DIR/archive/%f'
CONF
as_pg "$PGBIN/pg_ctl" -D "$DEMO_DIR/primary" -l "$DEMO_DIR/primary.log" -w start >/dev/null
psql_p "CREATE USER user_replicador WITH REPLICATION PASSWORD 'demo-repl-password';"
psql_p "CREATE ROLE monitor LOGIN PASSWORD '$MONITOR_PASSWORD'; GRANT pg_monitor TO monitor;"
psql_p "SELECT pg_create_physical_replication_slot('repl_slot');" >/dev/null

echo "== standby1: pg_basebackup -R -X stream -S repl_slot, port $STANDBY_PORT"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U user_replicador \
  -D "$DEMO_DIR/standby1" -R -X stream -c fast -S repl_slot
cat >> "$DEMO_DIR/standby1/postgresql.auto.conf" <<CONF
port = $STANDBY_PORT
cluster_name = 'standby1'
primary_conninfo = 'host=127.0.0.1 port=$PRIMARY_PORT user=user_replicador application_name=standby1'
primary_slot_name = 'repl_slot'
CONF
as_pg "$PGBIN/pg_ctl" -D "$DEMO_DIR/standby1" -l "$DEMO_DIR/standby1.log" -w start >/dev/null

echo "== writing some WAL"
psql_p "CREATE TABLE demo (id serial PRIMARY KEY, pad text); INSERT INTO demo (pad) SELECT repeat('x', 100) FROM generate_series(1, 50000); SELECT pg_switch_wal();" >/dev/null

cat > "$DEMO_DIR/exporter.toml" <<CONF
listen_address = "$LISTEN"
collect_interval = "2s"

[[targets]]
name = "primary"
dsn = "host=127.0.0.1 port=$PRIMARY_PORT user=monitor password=$MONITOR_PASSWORD dbname=postgres sslmode=disable"
cluster = "demo"

[[targets]]
name = "standby1"
dsn = "host=127.0.0.1 port=$STANDBY_PORT user=monitor password=$MONITOR_PASSWORD dbname=postgres sslmode=disable"
cluster = "demo"
CONF

"$BIN" --config "$DEMO_DIR/exporter.toml" &
exporter_pid=$!
pids+=("$exporter_pid")
port=${LISTEN##*:}
host=${LISTEN%:*}
case "$host" in ""|0.0.0.0|"[::]") host=127.0.0.1 ;; esac

# The demo runs only once the exporter answers. Another process may hold the
# port (and answer /healthz) while ours exits: it must still run a second
# after the first answer.
exporter_dead() {
  if kill -0 "$exporter_pid" 2>/dev/null; then return 1; fi
  wait "$exporter_pid" && code=0 || code=$?
  echo "demo: the exporter exited (code $code) instead of serving on $LISTEN; see its messages above" >&2
}
answered=""
for _ in $(seq 1 100); do
  exporter_dead && exit 1
  if curl -fsS -o /dev/null --max-time 1 "http://$host:$port/healthz" 2>/dev/null; then
    answered=1
    break
  fi
  sleep 0.2
done
sleep 1
exporter_dead && exit 1
if [ -z "$answered" ]; then
  echo "demo: the exporter does not answer on http://$host:$port/healthz after 20 s" >&2
  exit 1
fi

if [ -f alerts/pg-replication.rules.yml ] && command -v prometheus >/dev/null; then
  mkdir -p "$DEMO_DIR/prometheus" "$DEMO_DIR/alertmanager"
  cat > "$DEMO_DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $PWD/alerts/pg-replication.rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: pg_replication_exporter
    static_configs:
      - targets: ['127.0.0.1:$port']
CONF
  prometheus --config.file="$DEMO_DIR/prometheus.yml" --storage.tsdb.path="$DEMO_DIR/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$DEMO_DIR/prometheus.log" 2>&1 &
  pids+=($!)
  if [ -f alerts/alertmanager.yml ]; then
    prometheus-alertmanager --config.file=alerts/alertmanager.yml --storage.path="$DEMO_DIR/alertmanager" \
      --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$DEMO_DIR/alertmanager.log" 2>&1 &
    pids+=($!)
  fi
fi

sleep 3
cat <<MSG

pg_replication_exporter demo is running.
  metrics:       http://$host:$port/metrics
  landing page:  http://$host:$port/
  primary:       psql -h 127.0.0.1 -p $PRIMARY_PORT -U postgres
  standby1:      psql -h 127.0.0.1 -p $STANDBY_PORT -U postgres
MSG
if [ "${#pids[@]}" -gt 1 ]; then
  echo "  prometheus:    http://127.0.0.1:$PROM_PORT/alerts"
  [ "${#pids[@]}" -gt 2 ] && echo "  alertmanager:  http://127.0.0.1:$AM_PORT/"
fi
cat <<MSG

Try: psql -h 127.0.0.1 -p $STANDBY_PORT -U postgres -c 'SELECT pg_wal_replay_pause()'
     then write on the primary and watch pgrepl_standby_lag_bytes grow.
Press Ctrl-C to stop and remove everything.
MSG
if [ -n "${DEMO_EXIT_AFTER:-}" ]; then
  sleep "$DEMO_EXIT_AFTER"
  curl -fsS --max-time 5 "http://$host:$port/metrics" | grep -E '^pgrepl_(up|in_recovery|standby_state)' || true
  exit 0
fi
wait "${pids[0]}"
