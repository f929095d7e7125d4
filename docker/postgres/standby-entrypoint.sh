#!/bin/bash
# Entrypoint of the demo standby (runs as root).
#
# When the data directory is empty, clone the primary as in the physical
# replication notes:
#   pg_basebackup -R -X stream -C -S <slot> -c fast
# -R writes standby.signal and primary_conninfo / primary_slot_name into
# postgresql.auto.conf, -X stream copies the WAL written during the backup,
# -C -S creates the physical replication slot on the primary so that it keeps
# the WAL this standby still needs. Then start PostgreSQL through the official
# image's docker-entrypoint.sh (which finds PG_VERSION and skips initdb).
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
primary_host=${PRIMARY_HOST:-postgres-primary}
primary_port=${PRIMARY_PORT:-5432}
replication_user=${REPLICATION_USER:-replicator}
slot=${STANDBY_SLOT:-standby_slot}
application_name=${STANDBY_NAME:-standby}
password_file=${REPLICATION_PASSWORD_FILE:-/run/secrets/replication_password}

# The password for pg_basebackup and, later, for the WAL receiver: libpq
# reads ~postgres/.pgpass; primary_conninfo then needs no password.
home=$(getent passwd postgres | cut -d: -f6)
umask 077
printf '%s:%s:*:%s:%s\n' "$primary_host" "$primary_port" "$replication_user" \
    "$(head -n 1 "$password_file")" > "$home/.pgpass"
chown postgres:postgres "$home/.pgpass"

mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "standby: $PGDATA is empty, cloning $primary_host:$primary_port"
    until pg_isready -q -h "$primary_host" -p "$primary_port"; do
        echo "standby: waiting for the primary"
        sleep 2
    done
    conninfo="host=$primary_host port=$primary_port user=$replication_user application_name=$application_name"
    if ! gosu postgres pg_basebackup -d "$conninfo" -D "$PGDATA" \
            -R -X stream -C -S "$slot" -c fast -P -v; then
        # The slot survives a removed standby volume: reuse it.
        echo "standby: pg_basebackup -C failed, retrying with the existing slot $slot"
        find "$PGDATA" -mindepth 1 -delete
        gosu postgres pg_basebackup -d "$conninfo" -D "$PGDATA" \
            -R -X stream -S "$slot" -c fast -P -v
    fi
    echo "standby: base backup done"
fi

exec docker-entrypoint.sh "$@"
