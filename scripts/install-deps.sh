#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, only
# when it is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

want=()
have() { command -v "$1" >/dev/null 2>&1; }
pg_installed() { ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1; }

pg_installed || want+=(postgresql postgresql-contrib)
have psql || want+=(postgresql-client)
have promtool || want+=(prometheus)
have prometheus-alertmanager || want+=(prometheus-alertmanager)
have amtool || want+=(prometheus-alertmanager)
have runuser || want+=(util-linux)
# The documentation tests (tests/it/docs_exec.rs): the README's HAProxy example
# routes through a real HAProxy, and the migration guide's table is checked
# against Debian's postgres_exporter.
have haproxy || want+=(haproxy)
have prometheus-postgres-exporter || want+=(prometheus-postgres-exporter)
have jq || want+=(jq)
have curl || want+=(curl)
have openssl || want+=(openssl)
have ss || want+=(iproute2)
have perl || want+=(perl)
# make dist / test-dist: cargo-deb reads dependencies with dpkg-shlibdeps,
# the archive's binary is stripped with strip.
have dpkg-shlibdeps || want+=(dpkg-dev)
have strip || want+=(binutils)
for extra in "$@"; do
  case "$extra" in
    bench)
      have wrk || want+=(wrk)
      ;;
    browser)
      have chromium || want+=(chromium)
      ;;
  esac
done

if [ "${#want[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${want[*]}"
  # Packages must not start their own services (PostgreSQL's default
  # cluster, Prometheus on :9090): the tests start what they need on free
  # loopback ports. policy-rc.d is the Debian way to say so.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  [ -z "$created_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

# The static checks validate docker-compose.yml with check-jsonschema, which
# ships the Compose Specification schema (no file outside the repository).
if ! have check-jsonschema; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore check-jsonschema
fi

# mixin/render.py (make mixin, alerts/check.sh, the static tests) needs a
# jsonnet implementation: go-jsonnet's Python module, a prebuilt wheel that
# installs in about a second and renders the mixin in about one; the `jrsonnet`
# crate (a minute or more to build) only where no wheel fits. PyPI's C++
# `jsonnet` wheel is not used: it takes half a minute per render here.
have_jsonnet() {
  python3 -c 'import _gojsonnet' >/dev/null 2>&1 || have jrsonnet || [ -x "$HOME/.cargo/bin/jrsonnet" ]
}
if ! have_jsonnet; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --only-binary=:all: gojsonnet ||
    cargo install --locked --quiet jrsonnet --version 0.5.0-pre98
fi

# The test harness runs PostgreSQL as this user when it runs as root.
id postgres >/dev/null 2>&1 || { echo "the postgres user is missing after installing postgresql" >&2; exit 1; }
if ! have cargo; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
