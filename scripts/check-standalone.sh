#!/usr/bin/env bash
# Proves the repository stands alone: users clone it and nothing else.
#
#   scripts/check-standalone.sh        (`make test` runs it)
#
# 1. No tracked file reads or links a path above the repository
#    (a sibling checkout, the parent directory): checked with git grep on
#    what is committed, and every Markdown link resolved.
# 2. A clone into an empty directory, with nothing beside it, builds and
#    passes the static tests (dashboards, alert rules, compose file,
#    manifests, docs, licence, changelog, install docs). The build goes to
#    a target directory of its own (target/standalone), kept between runs
#    so that dependencies compile once: sharing the main one would let the two checkouts overwrite each
#    other's test binaries, which cargo names alike whatever their path.
#
# Only committed files are cloned: run it after committing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail=0
# Links in Markdown and paths in code that climb out of the repository.
# A relative link may climb inside it (docs/es/README.md -> ../../README.md):
# resolve every Markdown link and every "../" path and check it stays inside.
outside=$(git grep -nE '\.\./shared|/shared/(seed|hooks)/' -- . ':!*.lock' ':!scripts/check-standalone.sh' || true)
if [ -n "$outside" ]; then
    echo "FAIL tracked files refer to a path outside the repository:" >&2
    echo "$outside" | sed 's/^/     /' >&2
    fail=1
fi
if ! python3 scripts/check-links.py; then
    fail=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/empty"
git clone --quiet --no-local . "$tmp/empty/repo"
echo "cloned $(git -C "$tmp/empty/repo" rev-parse --short HEAD) into an empty directory"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}/standalone
if ! (cd "$tmp/empty/repo" && CARGO_TARGET_DIR="$target_dir" cargo test --quiet --test it -- static_assets:: docs_sync:: release_docs::); then
    echo "FAIL the static tests fail in a plain clone" >&2
    fail=1
fi
[ "$fail" -eq 0 ] && echo "ok   the repository stands alone"
exit "$fail"
