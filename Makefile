# pg_replication_exporter: every entry point a developer or CI needs.
# `make demo` and `make test` install what they need on a fresh Debian machine.

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build release deps lint test test-rust test-alerts demo bench soak clean fmt

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

## Unit tests, the real-PostgreSQL integration tests, and the alert rule checks.
test: deps lint test-rust test-alerts

test-rust:
	$(CARGO) test --no-fail-fast --all-targets -- --test-threads=2

test-alerts:
	@if [ -x alerts/check.sh ]; then ./alerts/check.sh; fi

## A throwaway primary and standby on ports 55432/55433 and the exporter on :9839.
demo: deps release
	./scripts/demo.sh

clean:
	$(CARGO) clean
	rm -rf .demo
