# Start, stop and provision the three servers for bench/compare.sh.
#
# Sourced, not run. SERVER_WRAP, when set, prefixes each server's command
# (compare.sh uses it for CPU pinning with taskset). Each server has <name>_start, <name>_stop, <name>_pid and
# <name>_provision (accounts through the server's own admin command). All of
# them listen on 127.0.0.1 only, each on its own port, with the same
# file-descriptor limit. Runtime state (generated configs, data, logs, the
# self-signed certificate) lives under $BENCH_STATE, outside the work tree.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BENCH_STATE=${BENCH_STATE:-/tmp/conclave-bench}
# The same descriptor limit for all three servers (and the load generator):
# 65536, or the hard limit when this environment allows less.
if [ -z "${BENCH_NOFILE:-}" ]; then
    BENCH_NOFILE=$(ulimit -Hn)
    [ "$BENCH_NOFILE" = unlimited ] || [ "$BENCH_NOFILE" -gt 65536 ] && BENCH_NOFILE=65536
fi
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
CONCLAVE_PORT=${CONCLAVE_PORT:-35222}
# How long a server gets to open its port before it counts as failed.
START_TIMEOUT=${START_TIMEOUT:-60}

# Command prefix that sets the descriptor limit (soft and hard) for a server.
nofile() { echo prlimit "--nofile=$BENCH_NOFILE:$BENCH_NOFILE"; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Fill @NAME@ placeholders of a template: render SRC DST NAME=VALUE...
render() {
    local src=$1 dst=$2; shift 2
    local expr=() kv
    for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${expr[@]}" "$src" >"$dst"
}

# True once something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID: wait until the port opens; fail if PID dies or on timeout.
wait_port() {
    local port=$1 pid=$2 i
    for ((i = 0; i < START_TIMEOUT * 4; i++)); do
        port_open "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.25
    done
    return 1
}

# wait_gone PID SECONDS: wait for a process to exit, then kill it if needed.
wait_gone() {
    local pid=$1 secs=${2:-15} i
    [ -n "$pid" ] || return 0
    for ((i = 0; i < secs * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}

# The self-signed certificate every server offers for STARTTLS.
make_cert() {
    local dir=$BENCH_STATE/cert
    mkdir -p "$dir"
    if [ ! -s "$dir/cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
            -addext "subjectAltName=DNS:localhost,DNS:conference.localhost" \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
        cat "$dir/cert.pem" "$dir/key.pem" >"$dir/combined.pem"
    fi
    chmod 755 "$dir"
    chmod 644 "$dir"/*.pem
}

# Refuse to start when the port is taken by someone else.
port_free_or_fail() {
    if port_open "$1"; then
        log "port 127.0.0.1:$1 is already in use; not starting $2"
        return 1
    fi
}

# ---------------------------------------------------------------- Prosody

PROSODY_STATE=$BENCH_STATE/prosody

prosody_prepare() {
    mkdir -p "$PROSODY_STATE/data"
    render "$BENCH_DIR/peers/prosody.cfg.lua.in" "$PROSODY_STATE/prosody.cfg.lua" \
        STATE="$PROSODY_STATE" PORT="$PROSODY_PORT" CERTDIR="$BENCH_STATE/cert" \
        CERT="$BENCH_STATE/cert/cert.pem" KEY="$BENCH_STATE/cert/key.pem"
    chown -R prosody:prosody "$PROSODY_STATE"
}

# prosody_provision PREFIX COUNT PASSWORD: accounts PREFIX1..PREFIXCOUNT,
# with `prosodyctl register`, two at a time.
prosody_provision() {
    local prefix=$1 count=$2 password=$3
    prosody_prepare
    seq 1 "$count" | xargs -P 2 -I{} runuser -u prosody -- prosodyctl \
        --config "$PROSODY_STATE/prosody.cfg.lua" register "$prefix{}" localhost "$password" \
        >/dev/null 2>&1 || {
        log "prosodyctl register failed"
        return 1
    }
}

prosody_start() {
    port_free_or_fail "$PROSODY_PORT" prosody || return 1
    prosody_prepare
    runuser -u prosody -- ${SERVER_WRAP:-} $(nofile) prosody --config "$PROSODY_STATE/prosody.cfg.lua" -F \
        >>"$PROSODY_STATE/stdout.log" 2>&1 &
    echo $! >"$PROSODY_STATE/launcher.pid"
    if ! wait_port "$PROSODY_PORT" "$!"; then
        log "prosody failed to start (see $PROSODY_STATE/prosody.log and stdout.log)"
        prosody_stop
        return 1
    fi
}

# The pid of the Lua process itself (runuser forks it).
prosody_pid() {
    local pid
    pid=$(cat "$PROSODY_STATE/prosody.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid" && return 0
    pgrep -u prosody -f "$PROSODY_STATE/prosody.cfg.lua" | head -n1
}

prosody_stop() {
    local pid launcher
    pid=$(prosody_pid)
    launcher=$(cat "$PROSODY_STATE/launcher.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    wait_gone "$pid" 15
    [ -n "$launcher" ] && wait_gone "$launcher" 5
    rm -f "$PROSODY_STATE/launcher.pid"
}

# --------------------------------------------------------------- ejabberd

EJABBERD_STATE=$BENCH_STATE/ejabberd

# ejabberdctl's options for this node (paths contain no spaces).
ejabberd_args() {
    echo --config-dir "$EJABBERD_STATE" --config "$EJABBERD_STATE/ejabberd.yml" \
        --ctl-config "$EJABBERD_STATE/ejabberdctl.cfg" \
        --spool "$EJABBERD_STATE/spool" --logs "$EJABBERD_STATE/log"
}
ejabberdctl_() { ejabberdctl $(ejabberd_args) "$@"; }

ejabberd_prepare() {
    mkdir -p "$EJABBERD_STATE/spool" "$EJABBERD_STATE/log"
    render "$BENCH_DIR/peers/ejabberd.yml.in" "$EJABBERD_STATE/ejabberd.yml" \
        PORT="$EJABBERD_PORT" PEM="$BENCH_STATE/cert/combined.pem"
    render "$BENCH_DIR/peers/ejabberdctl.cfg.in" "$EJABBERD_STATE/ejabberdctl.cfg" \
        STATE="$EJABBERD_STATE" NOFILE="$BENCH_NOFILE"
    cp /etc/ejabberd/inetrc "$EJABBERD_STATE/inetrc" 2>/dev/null || : >"$EJABBERD_STATE/inetrc"
    chown -R ejabberd:ejabberd "$EJABBERD_STATE"
}

ejabberd_start() {
    port_free_or_fail "$EJABBERD_PORT" ejabberd || return 1
    ejabberd_prepare
    # Run ejabberdctl as the ejabberd user itself (rather than letting it
    # su from root) so that the descriptor limit below survives.
    (cd "$EJABBERD_STATE/spool" &&
        runuser -u ejabberd -- ${SERVER_WRAP:-} $(nofile) ejabberdctl $(ejabberd_args) start >>"$EJABBERD_STATE/log/start.log" 2>&1)
    if ! wait_port "$EJABBERD_PORT" ""; then
        log "ejabberd failed to start (see $EJABBERD_STATE/log/)"
        ejabberd_stop
        return 1
    fi
    # The listener opens before every module has started.
    ejabberdctl_ started >/dev/null 2>&1
}

# ejabberd_provision PREFIX COUNT PASSWORD: needs the node running.
# `ejabberdctl register` starts an Erlang VM per account (about a second
# each), so accounts are imported in one go with ejabberd's own
# `ejabberdctl import_piefxis` (an XEP-0227 file); passwords are stored as
# SCRAM, as `register` would.
ejabberd_provision() {
    local prefix=$1 count=$2 password=$3 i file=$EJABBERD_STATE/accounts.xml
    {
        echo "<?xml version='1.0' encoding='UTF-8'?>"
        echo "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
        for ((i = 1; i <= count; i++)); do
            echo "<user name='$prefix$i' password='$password'/>"
        done
        echo "</host></server-data>"
    } >"$file"
    chown ejabberd:ejabberd "$file"
    ejabberdctl_ import_piefxis "$file" >/dev/null 2>&1 || {
        log "ejabberdctl import_piefxis failed"
        return 1
    }
    local have
    have=$(ejabberdctl_ registered_users localhost 2>/dev/null | grep -c "^$prefix[0-9]*$")
    if [ "$have" -lt "$count" ]; then
        log "ejabberd has $have of $count accounts after the import"
        return 1
    fi
}

ejabberd_pid() {
    local pid
    pid=$(cat "$EJABBERD_STATE/ejabberd.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid" && return 0
    pgrep -u ejabberd -f "conclavebench@localhost.*-s ejabberd" | head -n1
}

ejabberd_stop() {
    local pid
    pid=$(ejabberd_pid)
    [ -n "$pid" ] || return 0
    ejabberdctl_ stop >/dev/null 2>&1
    wait_gone "$pid" 30
    # epmd was started by this node; it exits when no node is left.
    ejabberdctl_ stopped >/dev/null 2>&1 || true
}

# --------------------------------------------------------------- Conclave

CONCLAVE_STATE=$BENCH_STATE/conclave
CONCLAVE_BIN=${CONCLAVE_BIN:-}

conclave_prepare() {
    mkdir -p "$CONCLAVE_STATE/data"
    render "$BENCH_DIR/peers/conclave.toml.in" "$CONCLAVE_STATE/conclave.toml" \
        STATE="$CONCLAVE_STATE" PORT="$CONCLAVE_PORT" \
        CERT="$BENCH_STATE/cert/cert.pem" KEY="$BENCH_STATE/cert/key.pem"
}

conclave_provision() {
    local prefix=$1 count=$2 password=$3 i
    conclave_prepare
    for ((i = 1; i <= count; i++)); do
        RUST_LOG=warn "$CONCLAVE_BIN" --config "$CONCLAVE_STATE/conclave.toml" \
            user add "$prefix$i@localhost" --password "$password" </dev/null >/dev/null 2>&1 || {
            log "conclave user add $prefix$i failed"
            return 1
        }
    done
}

conclave_start() {
    if [ -z "$CONCLAVE_BIN" ] || [ ! -x "$CONCLAVE_BIN" ]; then
        log "no Conclave binary (set CONCLAVE_BIN or build crates/conclave)"
        return 1
    fi
    port_free_or_fail "$CONCLAVE_PORT" conclave || return 1
    conclave_prepare
    RUST_LOG=warn ${SERVER_WRAP:-} $(nofile) "$CONCLAVE_BIN" --config "$CONCLAVE_STATE/conclave.toml" serve \
        >>"$CONCLAVE_STATE/stdout.log" 2>&1 &
    echo $! >"$CONCLAVE_STATE/conclave.pid"
    if ! wait_port "$CONCLAVE_PORT" "$!"; then
        log "conclave failed to start (see $CONCLAVE_STATE/stdout.log)"
        conclave_stop
        return 1
    fi
}

conclave_pid() {
    local pid
    pid=$(cat "$CONCLAVE_STATE/conclave.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

conclave_stop() {
    local pid
    pid=$(conclave_pid)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait_gone "$pid" 15
    rm -f "$CONCLAVE_STATE/conclave.pid"
}
