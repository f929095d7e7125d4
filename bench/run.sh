#!/usr/bin/env bash
# make bench: pg_replication_exporter vs prometheus-postgres-exporter, side by
# side against one throwaway primary/standby on loopback. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
