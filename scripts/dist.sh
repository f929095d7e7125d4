#!/usr/bin/env bash
# make dist: what a DBA installs without a Rust toolchain, in dist/:
#
#   pg_replication_exporter-<version>.linux-<arch>.tar.gz   the layout of the
#       Prometheus exporters' release archives: one top directory holding the
#       binary, LICENSE, README.md, CHANGELOG.md, VERSION (what --version
#       prints), config.example.toml, alerts/ and dashboards/
#   pg-replication-exporter_<version>-1_<arch>.deb          cargo-deb, from
#       [package.metadata.deb] in Cargo.toml and packaging/
#   sha256sums.txt                                          `sha256sum -c` format
#
# It packages the release binary that `make release` built (the Makefile's
# `dist` target depends on it, as `demo` and `bench` do), so nothing is
# compiled twice. cargo-deb is installed with `cargo install --locked` at the
# pinned version below when missing. SOURCE_DATE_EPOCH (default: the last
# commit's time) fixes the archive's timestamps, so the same commit and
# binary give the same archive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO=${CARGO:-cargo}
CARGO_DEB_VERSION=3.8.0
DIST=dist

fail() { echo "dist: $*" >&2; exit 1; }

metadata=$("$CARGO" metadata --format-version 1 --no-deps)
field() { python3 -c "import json,sys; m=json.load(sys.stdin); print($1)" <<<"$metadata"; }
target_dir=$(field 'm["target_directory"]')
manifest_version=$(field '[p for p in m["packages"] if p["name"] == "pg_replication_exporter"][0]["version"]')
bin="$target_dir/release/pg_replication_exporter"
[ -x "$bin" ] || fail "$bin is missing: run \`make release\` (or \`make dist\`, which does)"

# The version the binary reports is the one the archive is named after; a
# binary built from another version of Cargo.toml is stale.
version_text=$("$bin" --version)
version=$(head -n 1 <<<"$version_text" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?' | head -n 1 || true)
[ -n "$version" ] || fail "no version in \`$bin --version\`: $version_text"
[ "$version" = "$manifest_version" ] ||
    fail "$bin reports $version but Cargo.toml says $manifest_version: run \`make release\`"

# Test builds (`cargo test`, `cargo bench`) compile the same binary with the
# watchdog's fault hooks (feature `fault-injection`) and leave it in the same
# place; a release never ships them.
if grep -q PG_REPLICATION_EXPORTER_FAULTS "$bin"; then
    fail "$bin was built with the test-only fault hooks (by cargo test or cargo bench): run \`cargo build --release\` again"
fi

arch=$(dpkg --print-architecture 2>/dev/null || true)
if [ -z "$arch" ]; then
    case "$(uname -m)" in
        x86_64) arch=amd64 ;;
        aarch64) arch=arm64 ;;
        *) arch=$(uname -m) ;;
    esac
fi
name="pg_replication_exporter-$version.linux-$arch"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$DIST"
mkdir -p "$DIST"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top="$stage/$name"
mkdir -p "$top/alerts" "$top/dashboards"

# Stripped as cargo-deb strips the packaged one, so that the archive and the
# package carry the same bytes.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$top/pg_replication_exporter" "$bin"
chmod 0755 "$top/pg_replication_exporter"
install -m 0644 LICENSE README.md CHANGELOG.md "$top/"
install -m 0644 packaging/config.toml "$top/config.example.toml"
printf '%s\n' "$version_text" >"$top/VERSION"
chmod 0644 "$top/VERSION"
install -m 0644 alerts/*.rules.yml alerts/alertmanager.yml "$top/alerts/"
install -m 0644 dashboards/*.json "$top/dashboards/"

tarball="$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$stage" -cf - "$name" | gzip -9 -n >"$DIST/$tarball"

if [ "$("$CARGO" deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
    echo "dist: installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)"
    "$CARGO" install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb
fi
deb=$("$CARGO" deb --no-build --quiet --output "$DIST/" | tail -n 1)
deb=$(basename "$deb")
[ -f "$DIST/$deb" ] || fail "cargo deb did not write $DIST/$deb"

(cd "$DIST" && sha256sum "$tarball" "$deb" >sha256sums.txt)

echo "dist: $DIST/$tarball ($(du -h "$DIST/$tarball" | cut -f1))"
echo "dist: $DIST/$deb ($(du -h "$DIST/$deb" | cut -f1))"
echo "dist: $DIST/sha256sums.txt"
