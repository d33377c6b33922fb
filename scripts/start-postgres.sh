#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the storage tests and prints
#   CONCLAVE_TEST_POSTGRES_URL=postgres://...
# on its last line (everything else goes to stderr), so that
#   eval "$(scripts/start-postgres.sh | tail -1)"
# exports it. The server listens on 127.0.0.1 on a free port, keeps its
# files in $CONCLAVE_PG_DIR (default /tmp/conclave-test-postgres) and runs
# as the `postgres` system user when started by root. Running the script
# again while that server is up prints the same URL; otherwise the
# directory is wiped and a fresh server is made.
#
#   scripts/start-postgres.sh stop    stops the server and removes its files
set -euo pipefail

DIR=${CONCLAVE_PG_DIR:-/tmp/conclave-test-postgres}
DATA=$DIR/data
URL_FILE=$DIR/url

log() { echo "start-postgres: $*" >&2; }

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

BIN=$(find_bin)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y postgresql >&2 || { apt-get update >&2 && apt-get install -y postgresql >&2; }
    BIN=$(find_bin)
fi
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"
    exit 1
fi

# PostgreSQL refuses to run as root.
if [ "$(id -u)" = 0 ]; then
    AS_PG=(runuser -u postgres --)
else
    AS_PG=()
fi

running() {
    [ -f "$DATA/postmaster.pid" ] && "${AS_PG[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# Running and answering on the port of the recorded URL.
serving() {
    local port
    [ -s "$URL_FILE" ] || return 1
    port=$(sed -E 's|.*@127\.0\.0\.1:([0-9]+)/.*|\1|' "$URL_FILE")
    running && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port"
}

if [ "${1:-}" = stop ]; then
    if running; then
        "${AS_PG[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
    rm -rf "$DIR"
    log "stopped"
    exit 0
fi

if serving; then
    log "reusing the server in $DIR"
    echo "CONCLAVE_TEST_POSTGRES_URL=$(cat "$URL_FILE")"
    exit 0
fi

# A port nothing listens on.
PORT=
for candidate in $(seq 54320 54420); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        PORT=$candidate
        break
    fi
done
if [ -z "$PORT" ]; then
    log "no free port in 54320-54420"
    exit 1
fi

# A server left half-alive by an earlier run is stopped before its files go.
if running; then
    "${AS_PG[@]}" "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >&2 || true
fi
rm -rf "$DIR"
mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$DIR"
fi

PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
"${AS_PG[@]}" "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 || {
    cat "$DIR/initdb.log" >&2
    exit 1
}
"${AS_PG[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c fsync=off" start >&2 || {
    cat "$DIR/server.log" >&2
    exit 1
}

"${AS_PG[@]}" "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >&2 <<SQL
CREATE ROLE conclave LOGIN PASSWORD '$PASSWORD';
CREATE DATABASE conclave_test OWNER conclave;
SQL

URL="postgres://conclave:$PASSWORD@127.0.0.1:$PORT/conclave_test"
echo "$URL" >"$URL_FILE"
log "PostgreSQL $(basename "$(dirname "$BIN")") on 127.0.0.1:$PORT, files in $DIR (stop: $0 stop)"
echo "CONCLAVE_TEST_POSTGRES_URL=$URL"
