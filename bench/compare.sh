#!/usr/bin/env bash
# Measures Conclave, Prosody and ejabberd one after another on this machine,
# with the same scenarios and equivalent settings, and writes
# bench/results/<date>.md (table and Conclave/peer ratios) and
# bench/results/<date>.svg (deliveries per second and p99 latency against
# load). The raw JSON records go to bench/results/<date>/.
#
# Usage: bench/compare.sh [--quick] [SERVER...]
#   SERVER: conclave, prosody, ejabberd (default: all three)
#   --quick: small sizes and short steps, to check the set-up (about 5 min)
# Sizes, rates and durations can be changed through the environment; see
# bench/README.md. Must run as root (it installs packages and starts the
# peers under their own system users). Everything listens on 127.0.0.1 only.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=lib/peers.sh
source "$BENCH_DIR/lib/peers.sh"

QUICK=0
SERVERS=()
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        conclave | prosody | ejabberd) SERVERS+=("$arg") ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(conclave prosody ejabberd)

if [ "$QUICK" = 1 ]; then
    : "${LOGIN_CLIENTS:=20}" "${LOGIN_DURATION:=4}"
    : "${CHAT_PAIRS:=20}" "${CHAT_RATE:=5}" "${CHAT_DURATION:=3}" "${CHAT_STEPS:=3}"
    : "${MUC_ROOMS:=2}" "${MUC_OCCUPANTS:=10}" "${MUC_RATE:=1}" "${MUC_DURATION:=3}" "${MUC_STEPS:=3}"
    : "${IDLE_SESSIONS:=200}" "${IDLE_ROOMS:=10}" "${IDLE_SETTLE:=2}"
fi
# Scenario sizes (see bench/README.md for what each measures).
LOGIN_CLIENTS=${LOGIN_CLIENTS:-50}
LOGIN_DURATION=${LOGIN_DURATION:-10}
CHAT_PAIRS=${CHAT_PAIRS:-50}
CHAT_RATE=${CHAT_RATE:-5}
CHAT_DURATION=${CHAT_DURATION:-8}
CHAT_STEPS=${CHAT_STEPS:-8}
MUC_ROOMS=${MUC_ROOMS:-5}
MUC_OCCUPANTS=${MUC_OCCUPANTS:-20}
MUC_RATE=${MUC_RATE:-0.5}
MUC_DURATION=${MUC_DURATION:-8}
MUC_STEPS=${MUC_STEPS:-9}
IDLE_SESSIONS=${IDLE_SESSIONS:-1000}
IDLE_ROOMS=${IDLE_ROOMS:-20}
IDLE_SETTLE=${IDLE_SETTLE:-3}
STEP_FACTOR=${STEP_FACTOR:-2}
P99_LIMIT_MS=${P99_LIMIT_MS:-100}
# Chat and group chat use plaintext PLAIN by default (the server's XMPP
# work, not TLS libraries, is what they compare); the login storm runs both.
FLOW_TLS=${FLOW_TLS:-plain}
# Pin each server to CPU 0 and the load generator to CPU 1, so that every
# server gets the same single core and the generator never starves it.
BENCH_PIN=${BENCH_PIN:-1}
# Upper bound for one scenario run, in seconds.
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-1200}
PASSWORD=${BENCH_PASSWORD:-bench-secret}
PREFIX=${BENCH_PREFIX:-bench}

DATE=${BENCH_DATE:-$(date +%Y-%m-%d)}
RESULTS=$BENCH_DIR/results
RAW=$RESULTS/$DATE
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

max() { local m=$1; shift; for v in "$@"; do [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }
ACCOUNTS=$(max "$LOGIN_CLIENTS" $((CHAT_PAIRS * 2)) $((MUC_ROOMS * MUC_OCCUPANTS)) "$IDLE_SESSIONS")

if [ "$(id -u)" != 0 ]; then
    echo "compare.sh must run as root (package installation, system users)" >&2
    exit 1
fi

# ------------------------------------------------------------ preparation

install_peers() {
    local missing=()
    command -v prosody >/dev/null || missing+=(prosody)
    command -v ejabberdctl >/dev/null || missing+=(ejabberd)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody ejabberd >/dev/null || return 1
    # The packages' own services must not keep running on the default ports.
    service prosody stop >/dev/null 2>&1 || true
    service ejabberd stop >/dev/null 2>&1 || true
}

build() {
    log "building conclave-bench and conclave (release)"
    (cd "$REPO" && cargo build --release -q -p conclave-bench) || return 1
    BENCH_BIN=$CARGO_TARGET_DIR/release/conclave-bench
    if [ -z "$CONCLAVE_BIN" ]; then
        if (cd "$REPO" && cargo build --release -q -p conclave); then
            CONCLAVE_BIN=$CARGO_TARGET_DIR/release/conclave
        else
            log "conclave failed to build; its column will say so"
        fi
    fi
}

# Writes a record saying that SERVER could not run (DURING: what failed).
record_failure() {
    local server=$1 during=$2 error=$3
    python3 -c 'import json,sys; print(json.dumps({"server":sys.argv[1],"scenario":"failed","during":sys.argv[2],"error":sys.argv[3]}))' \
        "$server" "$during" "$error" >"$RAW/$server-00-$during.json"
}

pin_server() { [ "$BENCH_PIN" = 1 ] && echo taskset -c 0; }
pin_bench() { [ "$BENCH_PIN" = 1 ] && echo taskset -c 1; }

port_of() {
    case $1 in
        conclave) echo "$CONCLAVE_PORT" ;;
        prosody) echo "$PROSODY_PORT" ;;
        ejabberd) echo "$EJABBERD_PORT" ;;
    esac
}

# Provision accounts PREFIX1..PREFIXN with the server's own admin command.
provision() {
    local server=$1
    case $server in
        prosody) prosody_provision "$PREFIX" "$ACCOUNTS" "$PASSWORD" ;;
        conclave) conclave_provision "$PREFIX" "$ACCOUNTS" "$PASSWORD" ;;
        ejabberd) ejabberd_provision "$PREFIX" "$ACCOUNTS" "$PASSWORD" ;;
    esac
}

start_server() {
    local server=$1
    case $server in
        prosody) SERVER_WRAP="$(pin_server)" prosody_start ;;
        ejabberd) SERVER_WRAP="$(pin_server)" ejabberd_start ;;
        conclave) SERVER_WRAP="$(pin_server)" conclave_start ;;
    esac
}

stop_all() {
    prosody_stop 2>/dev/null
    ejabberd_stop 2>/dev/null
    conclave_stop 2>/dev/null
}

# run_scenario SERVER N NAME ARGS...: one load-generator run, its JSON record
# saved as RAW/SERVER-N-NAME.json.
run_scenario() {
    local server=$1 n=$2 name=$3; shift 3
    local out="$RAW/$server-$n-$name.json"
    log "$server: $name"
    # shellcheck disable=SC2046
    timeout --kill-after=10 "$SCENARIO_TIMEOUT" $(pin_bench) $(nofile) "$BENCH_BIN" \
        --host 127.0.0.1 --port "$(port_of "$server")" --domain localhost \
        --muc-domain conference.localhost --password "$PASSWORD" --user-prefix "$PREFIX" \
        --label "$server" --json "$@" >"$out.tmp"
    local rc=$?
    if [ -s "$out.tmp" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out.tmp" 2>/dev/null; then
        mv "$out.tmp" "$out"
    else
        rm -f "$out.tmp"
        record_failure "$server" "$n-$name" "load generator exited with status $rc and no result (timeout after ${SCENARIO_TIMEOUT}s is status 124)"
    fi
}

bench_server() {
    local server=$1 pid
    log "=== $server ==="
    # Other work on the machine skews every figure: record how busy it was.
    echo "$server: $(cut -d' ' -f1-3 /proc/loadavg) at start" >>"$RAW/load.txt"
    rm -rf "${BENCH_STATE:?}/$server"
    if [ "$server" = conclave ] && { [ -z "$CONCLAVE_BIN" ] || [ ! -x "$CONCLAVE_BIN" ]; }; then
        record_failure conclave start "no Conclave binary (the build failed)"
        return
    fi
    if [ "$server" != ejabberd ]; then
        log "$server: provisioning $ACCOUNTS accounts"
        provision "$server" || { record_failure "$server" provision "provisioning accounts failed"; return; }
    fi
    if ! start_server "$server"; then
        record_failure "$server" start "server failed to start on 127.0.0.1:$(port_of "$server")"
        stop_all
        return
    fi
    if [ "$server" = ejabberd ]; then
        log "$server: provisioning $ACCOUNTS accounts"
        provision "$server" || { record_failure "$server" provision "provisioning accounts failed"; stop_all; return; }
    fi
    pid=$("${server}_pid")
    log "$server: running as pid $pid"

    run_scenario "$server" 1 idle idle --sessions "$IDLE_SESSIONS" --rooms "$IDLE_ROOMS" \
        --settle "$IDLE_SETTLE" --server-pid "$pid"
    run_scenario "$server" 2 login-starttls --tls starttls login \
        --clients "$LOGIN_CLIENTS" --duration "$LOGIN_DURATION"
    run_scenario "$server" 3 login-plain --tls plain login \
        --clients "$LOGIN_CLIENTS" --duration "$LOGIN_DURATION"
    run_scenario "$server" 4 chat --tls "$FLOW_TLS" chat --pairs "$CHAT_PAIRS" \
        --rate "$CHAT_RATE" --duration "$CHAT_DURATION" --saturate --max-steps "$CHAT_STEPS" \
        --step-factor "$STEP_FACTOR" --p99-limit-ms "$P99_LIMIT_MS"
    run_scenario "$server" 5 muc --tls "$FLOW_TLS" muc --rooms "$MUC_ROOMS" \
        --occupants "$MUC_OCCUPANTS" --rate "$MUC_RATE" --duration "$MUC_DURATION" --saturate \
        --max-steps "$MUC_STEPS" --step-factor "$STEP_FACTOR" --p99-limit-ms "$P99_LIMIT_MS"

    if ! kill -0 "$pid" 2>/dev/null; then
        record_failure "$server" crash "the server process exited during the run"
    fi
    "${server}_stop"
    echo "$server: $(cut -d' ' -f1-3 /proc/loadavg) at end" >>"$RAW/load.txt"
}

write_preamble() {
    local f=$1
    {
        echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') with \`bench/compare.sh ${ORIG_ARGS[*]}\`."
        echo
        echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)."
        echo "- Conclave $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && git diff --quiet -- . ':!bench/results' 2>/dev/null || echo ' (with uncommitted changes)'), release build; Prosody $(dpkg-query -W -f '${Version}' prosody 2>/dev/null) (Debian, Lua $(lua5.4 -v 2>/dev/null | awk '{print $2}')); ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null) (Debian, Erlang/OTP $(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null))."
        if [ "$BENCH_PIN" = 1 ]; then
            echo "- Each server pinned to CPU 0, the load generator to CPU 1 (\`taskset\`): every server gets the same single core."
        else
            echo "- No CPU pinning: servers and the load generator share both cores."
        fi
        echo "- File-descriptor limit $BENCH_NOFILE for all three servers and the generator; logging at warning; no rate limits or shapers (see bench/README.md for each server's defaults)."
        echo "- Login storm: $LOGIN_CLIENTS concurrent clients for ${LOGIN_DURATION}s, each logging in and out in a loop."
        echo "- Chat: $CHAT_PAIRS pairs ($FLOW_TLS), steps from $CHAT_RATE msg/s per client ×$STEP_FACTOR, ${CHAT_DURATION}s each, up to $CHAT_STEPS steps."
        echo "- Group chat: $MUC_ROOMS rooms × $MUC_OCCUPANTS occupants ($FLOW_TLS), steps from $MUC_RATE msg/s per occupant ×$STEP_FACTOR, ${MUC_DURATION}s each, up to $MUC_STEPS steps; every message is delivered to all $MUC_OCCUPANTS occupants, the sender included."
        echo "- Saturation: a step is sustained when nothing is lost, duplicated or misrouted, no connection fails and p99 ≤ ${P99_LIMIT_MS} ms; stepping stops at the first step that is not. \"Highest sustained\" is the best sustained step."
        echo "- Idle: $IDLE_SESSIONS available sessions, then spread over $IDLE_ROOMS rooms; RSS from /proc/<pid>/status after ${IDLE_SETTLE}s of rest."
        echo "- All figures come from the clients: sequence numbers and send timestamps travel in the message bodies."
        echo "- Load average (1, 5, 15 min) around each server's run; anything well above 1 means other work competed for the CPUs and the figures are skewed: $(paste -sd';' "$RAW/load.txt" 2>/dev/null | sed 's/;/; /g')."
    } >"$f"
}

ORIG_ARGS=("$@")
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

install_peers || { echo "installing prosody and ejabberd failed" >&2; exit 1; }
build || { echo "building conclave-bench failed" >&2; exit 1; }
make_cert || { echo "making the certificate failed" >&2; exit 1; }
rm -rf "$RAW"
mkdir -p "$RAW"
for port in "$PROSODY_PORT" "$EJABBERD_PORT" "$CONCLAVE_PORT"; do
    port_open "$port" && log "warning: 127.0.0.1:$port is already in use"
done

started=$(date +%s)
for server in "${SERVERS[@]}"; do
    bench_server "$server"
done
log "all servers done in $(( $(date +%s) - started ))s"

write_preamble "$RAW/preamble.md"
"$BENCH_BIN" report --input "$RAW" --out "$RESULTS/$DATE.md" --plot "$RESULTS/$DATE.svg" \
    --preamble "$RAW/preamble.md" \
    --title "Conclave, Prosody and ejabberd compared, $DATE" || exit 1
log "wrote $RESULTS/$DATE.md and $RESULTS/$DATE.svg"
