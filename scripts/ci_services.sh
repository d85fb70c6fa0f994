#!/usr/bin/env bash
# Install and start what the serving tests need beyond Python: PostgreSQL on 127.0.0.1 and headless Chromium.
# Idempotent. Prints only `export FUSIONREC_PG_DSN=...` on stdout (logs go to stderr), so CI can do:
#   eval "$(bash scripts/ci_services.sh)"
# Environment: FUSIONREC_PG_DATA (cluster dir, default /tmp/fusionrec-pg), FUSIONREC_PG_PORT (default 55432).
set -euo pipefail
log() { echo "ci_services: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need=()
command -v chromium >/dev/null || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq "${need[@]}" >&2
fi

PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PGDATA="${FUSIONREC_PG_DATA:-/tmp/fusionrec-pg}"
PGPORT="${FUSIONREC_PG_PORT:-55432}"
PGUSER_NAME=fusionrec
PGPASS=fusionrec
PGDB=fusionrec

# PostgreSQL refuses to run as root: run the server as the postgres system user then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  AS=(runuser -u postgres --)
else
  AS=()
fi
mkdir -p "$PGDATA"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  log "initdb $PGDATA"
  "${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >&2
fi
if ! "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:$PGPORT"
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA" start >&2
fi
PSQL=("${AS[@]}" "$PGBIN/psql" -h "$PGDATA" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$PGUSER_NAME'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE ROLE $PGUSER_NAME LOGIN PASSWORD '$PGPASS'" >&2
fi
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$PGDB'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE DATABASE $PGDB OWNER $PGUSER_NAME" >&2
fi
log "PostgreSQL ready; Chromium at $(command -v chromium)"
echo "export FUSIONREC_PG_DSN=postgresql://$PGUSER_NAME:$PGPASS@127.0.0.1:$PGPORT/$PGDB"
