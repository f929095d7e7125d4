#!/bin/bash
# Entrypoint of the demo primary (runs as root, then hands over to the official
# image's docker-entrypoint.sh, which drops to the postgres user).
# The WAL archive is a named volume whose mount point Docker creates owned by
# root: give it to postgres so that archive_command can write to it.
set -euo pipefail

archive_dir=${WAL_ARCHIVE_DIR:-/var/lib/postgresql/archive}
mkdir -p "$archive_dir"
chown postgres:postgres "$archive_dir"
chmod 0750 "$archive_dir"

exec docker-entrypoint.sh "$@"
