# pg_replication_exporter: every entry point a developer or CI needs.
# `make demo` and `make test` install what they need on a fresh Debian machine.

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build release deps lint check test test-rust test-standalone test-matrix test-alerts test-dist dist image mixin metrics-doc golden golden-capture demo bench soak clean fmt

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release

deps:
	./scripts/install-deps.sh browser

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Before a commit: formatting, clippy, the unit tests, and the tests that
## need no database and change nothing on the machine (golden files, static
## assets, the documents and the generated metric reference). The static
## tests call python3's jsonnet and check-jsonschema, which `make deps`
## installs once; `make check` itself installs nothing.
check: lint
	$(CARGO) test --lib --bins
	$(CARGO) test --doc
	$(CARGO) test --test it -- golden:: static_assets:: docs_sync:: release_docs:: metric_reference:: matrix::compatibility_table

## Unit tests, the real-PostgreSQL integration tests, and the alert rule checks.
MATRIX_MAJORS ?= 10 11 12 13 14 15 16 17 18

test: deps lint test-rust test-standalone test-matrix test-alerts test-dist

test-rust:
	$(CARGO) test --no-fail-fast --all-targets -- --test-threads=2

## A clone into an empty directory passes the static tests; no link leaves the repository.
test-standalone:
	./scripts/check-standalone.sh

## Every supported PostgreSQL major (npm server builds, cached in
## /var/cache/pgrepl-pg): the tests `#[ignore]`d for the server build they
## need (a missing one fails them). The isolation test runs alone: it times
## /healthz while handshakes burn the CPU.
test-matrix:
	./scripts/pg-versions.sh $(MATRIX_MAJORS)
	$(CARGO) test --test it -- --ignored --test-threads=2 matrix:: slot_invalidation:: failover_slots:: docs_exec::
	$(CARGO) test --test it -- --ignored isolation::

test-alerts:
	@if [ ! -x alerts/check.sh ]; then echo "make test-alerts: alerts/check.sh is missing or not executable" >&2; exit 1; fi
	./alerts/check.sh

## The artifacts of `make dist`, as a DBA uses them: the .deb installed with
## dpkg on this machine (root) and purged, the archive extracted; both run
## against a real primary and standby.
test-dist: dist
	PGREPL_TEST_DIST=$(CURDIR)/dist $(CARGO) test --test it -- --ignored --test-threads=2 packaging::

## Release archive, sha256sums.txt and .deb in dist/, from the release build
## that `demo` and `bench` use too.
dist: release
	./scripts/dist.sh

## The container image, when docker or podman is installed (not needed by the tests).
image:
	@engine=$$(command -v docker || command -v podman || true); \
	if [ -z "$$engine" ]; then echo "make image: skipped: neither docker nor podman is installed"; exit 0; fi; \
	if ! $$engine info >/dev/null 2>&1; then echo "make image: $$engine is installed but does not answer (\`$$engine info\` fails): start its daemon" >&2; exit 1; fi; \
	version=$$(sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1); \
	echo "$$engine build -t pg_replication_exporter:$$version -t pg_replication_exporter:latest ."; \
	$$engine build -t pg_replication_exporter:$$version -t pg_replication_exporter:latest .

## Render alerts/pg-replication.rules.yml, dashboards/*.json and
## deploy/kubernetes/prometheusrule.yaml from mixin/ (default _config), in place
## (render.py writes only where --out says).
mixin:
	python3 mixin/render.py --out .

## Write docs/metrics.md and docs/es/metrics.md from the family descriptors
## (cargo test --test it -- metric_reference:: fails when they are out of date).
metrics-doc:
	PGREPL_BLESS=1 $(CARGO) test --test it -- metric_reference::

## Rewrite the golden expected outputs under tests/fixtures/golden from the
## committed fixtures (no database), after reviewing the diff that
## `cargo test --test it -- golden::` shows.
golden:
	PGREPL_BLESS=1 $(CARGO) test --test it -- golden::

## Recapture the golden fixtures from real servers (Debian's PostgreSQL, and
## PostgreSQL 10 and 17 from scripts/pg-versions.sh); then `make golden`.
## One of them: make golden-capture GOLDEN_CAPTURE=capture_pg10
GOLDEN_CAPTURE ?= capture_
golden-capture:
	./scripts/pg-versions.sh 10 17
	$(CARGO) test --test it -- --ignored golden::$(GOLDEN_CAPTURE) --test-threads=1 --nocapture

## A throwaway primary and standby on ports 55432/55433 and the exporter on :9839.
demo: deps release
	./scripts/demo.sh

## Side by side with Debian's prometheus-postgres-exporter; writes bench/out/results.md.
bench: release
	./scripts/install-deps.sh bench
	./bench/run.sh

## A long run with a standby that connects and disconnects (not in CI).
soak: release
	./bench/soak.sh

clean:
	$(CARGO) clean
	rm -rf .demo dist
