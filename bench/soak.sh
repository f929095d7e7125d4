#!/usr/bin/env bash
# make soak: >= 20,000 collections against a primary and a flapping standby;
# fails when the exporter's RSS grows by 2 MiB or more or it leaks sessions.
# Not part of CI (about 6 minutes). See BENCHMARKS.md, "Soak".
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/soak.py "$@"
