#!/bin/bash
# Runs once, when the primary's data directory is initialised
# (/docker-entrypoint-initdb.d of the official postgres image), as in the
# physical replication notes:
#   - a role with the REPLICATION attribute for the standby's pg_basebackup
#     and WAL receiver,
#   - a pg_hba.conf line that lets it open replication connections,
#   - a monitoring role for pg_replication_exporter, member of pg_monitor
#     (pg_stat_replication with all columns, pg_ls_waldir(),
#     pg_ls_archive_statusdir(), every setting). It needs no other privilege.
# The replication slot is created by the standby's `pg_basebackup -C -S`.
set -euo pipefail

replication_password=$(cat "${REPLICATION_PASSWORD_FILE:-/run/secrets/replication_password}")
monitor_password=$(cat "${MONITOR_PASSWORD_FILE:-/run/secrets/monitor_password}")

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set repl_password="$replication_password" \
    --set monitor_password="$monitor_password" <<'SQL'
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'repl_password';
CREATE ROLE pgrepl_monitor WITH LOGIN PASSWORD :'monitor_password' IN ROLE pg_monitor;
ALTER ROLE pgrepl_monitor SET statement_timeout = '10s';
SQL

# Replication connections match only lines whose database is `replication`.
cat >> "$PGDATA/pg_hba.conf" <<'HBA'

# physical replication for the demo standby (added by initdb-replication.sh)
host    replication     replicator      all                     scram-sha-256
HBA
