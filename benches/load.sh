#!/usr/bin/env bash
# Load benchmark (not a test): the same fast origin behind nothing, nginx,
# a bare Pingora pass-through, tollgate (free path, 402 as JSON and as HTML,
# paid replay), and express with the x402-express middleware (402 path).
#
# Two modes (BENCH_MODE):
#   saturate  every row loaded by the same wrk command; req/s, p50, p99
#   rate      every row driven at the same fixed offered rate, below saturation,
#             by examples/rate_client.rs (open loop); per row the server's CPU
#             time per request (utime+stime from /proc, all its processes),
#             context switches per request, p50/p99 from the scheduled send time,
#             and errors
#   both      rate, then saturate; both tables
# Rows run interleaved for several rounds (the machine is shared and noisy);
# the tables report the median of each metric across rounds.
#
# Usage: benches/load.sh
# Environment (defaults in brackets):
#   BENCH_MODE [saturate]     saturate | rate | both
#   BENCH_DURATION [8s]       length of each measured run (whole seconds in rate mode)
#   BENCH_CONNECTIONS [64]    wrk -c
#   BENCH_WRK_THREADS [2]     wrk -t
#   BENCH_RATE [2000]         rate mode: offered req/s for every row
#   BENCH_RATE_CONNECTIONS [16] rate mode: keep-alive connections sharing that rate
#   BENCH_ROUNDS [3]          rounds; each row runs once per round (per mode)
#   BENCH_WARMUP [2s]         one unmeasured run per row first ("0" skips)
#   BENCH_THREADS [2]         tollgate threads = nginx workers = bare_pingora threads
#   BENCH_ORIGIN_THREADS []   fast_origin worker threads (default: one per core)
#   BENCH_READY_TIMEOUT [10]  seconds to wait for each server to become ready
#   BENCH_SKIP_BUILD [0]      1 = use the existing release binaries
#   BENCH_TARGET_DIR []       cargo target dir (else CARGO_TARGET_DIR, else ./target)
#   BENCH_TOLLGATE_BIN []     run this tollgate binary instead of the built one
#   BENCH_ANVIL []            anvil binary for the paid-replay row (else chain/node_modules's,
#                             else anvil on PATH; none: that row is n/a)
#   BENCH_OUT [benches/out]   where results and raw outputs go
# Every server listens on 127.0.0.1 only; every request goes to loopback.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/benches"

DURATION="${BENCH_DURATION:-8s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
ROUNDS="${BENCH_ROUNDS:-3}"
WARMUP="${BENCH_WARMUP:-2s}"
THREADS="${BENCH_THREADS:-2}"
ORIGIN_THREADS="${BENCH_ORIGIN_THREADS:-}"
READY_TIMEOUT="${BENCH_READY_TIMEOUT:-10}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
OUT_BASE="${BENCH_OUT:-$BENCH_DIR/out}"
MODE="${BENCH_MODE:-saturate}"
RATE="${BENCH_RATE:-2000}"
RATE_CONNECTIONS="${BENCH_RATE_CONNECTIONS:-16}"
if [[ -n ${BENCH_TARGET_DIR:-} ]]; then
    export CARGO_TARGET_DIR="$BENCH_TARGET_DIR"
fi

case $MODE in
saturate | rate | both) ;;
*)
    echo "load.sh: BENCH_MODE must be saturate, rate or both (got '$MODE')" >&2
    exit 2
    ;;
esac
RUN_SATURATE=0 RUN_RATE=0
[[ $MODE != rate ]] && RUN_SATURATE=1
[[ $MODE != saturate ]] && RUN_RATE=1
if [[ $RUN_RATE == 1 && ! $DURATION =~ ^[1-9][0-9]*s?$ ]]; then
    echo "load.sh: in rate mode BENCH_DURATION must be whole seconds (got '$DURATION')" >&2
    exit 2
fi

for v in CONNECTIONS WRK_THREADS ROUNDS THREADS READY_TIMEOUT RATE RATE_CONNECTIONS; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "load.sh: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if [[ -n $ORIGIN_THREADS && ! $ORIGIN_THREADS =~ ^[1-9][0-9]*$ ]]; then
    echo "load.sh: BENCH_ORIGIN_THREADS must be a positive integer" >&2
    exit 2
fi

RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="$OUT_BASE/$RUN_ID"
RAW_DIR="$RUN_DIR/raw"
LOG_DIR="$RUN_DIR/logs"
mkdir -p "$RAW_DIR" "$LOG_DIR"
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")"

log() { printf '[bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- processes

PIDS=()

is_alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ -n $stat && $stat != Z* ]]
}

cleanup() {
    local rc=$? pid i any
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        any=0
        for pid in "${PIDS[@]}"; do
            if is_alive "$pid"; then any=1; fi
        done
        [[ $any == 0 ]] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_bg NAME CMD... : runs CMD in its own session and process group, with
# stdout/stderr in $LOG_DIR/NAME.{out,err}; sets STARTED_PID.
STARTED_PID=
start_bg() {
    local name=$1
    shift
    # A background child of a non-interactive shell is not a group leader, so
    # setsid execs in place: the pid we record is the process and its group.
    setsid "$@" >"$LOG_DIR/$name.out" 2>"$LOG_DIR/$name.err" </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# wait_line FILE REGEX PID : polls (bounded) until FILE has a line matching
# REGEX; prints that line. Fails if PID exits or time runs out.
wait_line() {
    local file=$1 re=$2 pid=$3 i line
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        line="$(grep -E -m1 -- "$re" "$file" 2>/dev/null || true)"
        if [[ -n $line ]]; then
            printf '%s\n' "$line"
            return 0
        fi
        is_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# http_code URL : prints the status code of one GET (000 on failure).
http_code() {
    curl --noproxy '*' -s -o /dev/null --max-time 2 \
        -H 'Accept: application/json' -w '%{http_code}' "$1" 2>/dev/null || true
}

# wait_http URL CODE PID : polls (bounded) until GET URL answers CODE.
wait_http() {
    local url=$1 want=$2 pid=$3 i
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        [[ "$(http_code "$url")" == "$want" ]] && return 0
        is_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_of() { # "listening 127.0.0.1:1234" -> 1234
    local line=$1
    line="${line##*:}"
    printf '%s\n' "${line%%[!0-9]*}"
}

tail_err() { tail -n 5 "$LOG_DIR/$1.err" 2>/dev/null | tr '\n' ' ' | cut -c1-300; }

# ---------------------------------------------------------------- tools

apt_install() {
    if [[ $(id -u) != 0 ]]; then
        echo "load.sh: $1 is missing and installing it needs root (apt-get install $1)" >&2
        exit 1
    fi
    log "installing $1 with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

if [[ $RUN_SATURATE == 1 ]]; then
    command -v wrk >/dev/null 2>&1 || apt_install wrk
fi
NGINX_BIN="$(command -v nginx 2>/dev/null || true)"
[[ -z $NGINX_BIN && -x /usr/sbin/nginx ]] && NGINX_BIN=/usr/sbin/nginx
if [[ -z $NGINX_BIN ]]; then
    apt_install nginx
    NGINX_BIN="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
fi
command -v python3 >/dev/null 2>&1 || { echo "load.sh: python3 is required" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || apt_install curl

# ---------------------------------------------------------------- build

TOLLGATE_NA=""   # reason the tollgate rows are n/a, if they are
DEVCHAIN_NA=""   # reason the paid-replay row is n/a (no token deployer), if it is
cd "$ROOT"
EXAMPLES=(--example bare_pingora --example fast_origin --example rate_client)
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    if ! cargo build --release --bin tollgate --example devchain "${EXAMPLES[@]}" >&2; then
        log "full build failed; building the examples alone (tollgate rows will be n/a)"
        TOLLGATE_NA="tollgate failed to build"
        if ! cargo build --release "${EXAMPLES[@]}" >&2; then
            echo "load.sh: cannot build the bench examples (see cargo's output above)" >&2
            exit 1
        fi
    fi
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ORIGIN_BIN="$TARGET_DIR/release/examples/fast_origin"
PINGORA_BIN="$TARGET_DIR/release/examples/bare_pingora"
RATE_BIN="$TARGET_DIR/release/examples/rate_client"
DEVCHAIN_BIN="$TARGET_DIR/release/examples/devchain"
TOLLGATE_BIN="${BENCH_TOLLGATE_BIN:-$TARGET_DIR/release/tollgate}"
for b in "$ORIGIN_BIN" "$PINGORA_BIN"; do
    [[ -x $b ]] || { echo "load.sh: missing $b" >&2; exit 1; }
done
if [[ $RUN_RATE == 1 && ! -x $RATE_BIN ]]; then
    echo "load.sh: missing $RATE_BIN" >&2
    exit 1
fi
if [[ -z $TOLLGATE_NA && ! -x $TOLLGATE_BIN ]]; then
    TOLLGATE_NA="no tollgate binary"
fi
[[ -x $DEVCHAIN_BIN ]] || DEVCHAIN_NA="examples/devchain.rs not built"

# x402-express dependencies: install once per lockfile content.
X402_DIR="$BENCH_DIR/x402"
X402_NA=""
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    X402_NA="node/npm not installed"
else
    stamp="$X402_DIR/node_modules/.bench-stamp"
    if [[ -f $X402_DIR/package-lock.json ]]; then
        want="$(sha256sum "$X402_DIR/package-lock.json" | cut -d' ' -f1)"
        if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
            log "installing x402 bench dependencies (npm ci)"
            if (cd "$X402_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2); then
                echo "$want" >"$stamp"
            else
                X402_NA="npm ci failed"
            fi
        fi
    elif [[ ! -d $X402_DIR/node_modules ]]; then
        log "installing x402 bench dependencies (npm install)"
        (cd "$X402_DIR" && npm install --no-audit --no-fund --loglevel=error >&2) ||
            X402_NA="npm install failed"
    fi
fi

# ---------------------------------------------------------------- servers

# Row registry: names in table order, with URL, expected status and n/a reason.
# HDR: the row's request headers, one per line; CTYPE: the 402 body's content type;
# SID: the server's session id (setsid: its first pid), whose processes' CPU is counted.
ROWS=(origin nginx bare-pingora tollgate-free tollgate-402 tollgate-402-html tollgate-replay x402-express-402)
declare -A URL=() WANT=() NA=() HDR=() CTYPE=() SID=()
WANT[origin]=200 WANT[nginx]=200 WANT[bare-pingora]=200
WANT[tollgate-free]=200 WANT[tollgate-402]=402 WANT[tollgate-402-html]=402
WANT[tollgate-replay]=200 WANT[x402-express-402]=402
for row in "${ROWS[@]}"; do HDR[$row]='Accept: application/json'; done
HDR[tollgate-402-html]='Accept: text/html'
CTYPE[tollgate-402]=application/json CTYPE[x402-express-402]=application/json
CTYPE[tollgate-402-html]=text/html

# 1. the origin
origin_args=(0)
[[ -n $ORIGIN_THREADS ]] && origin_args+=("$ORIGIN_THREADS")
start_bg origin "$ORIGIN_BIN" "${origin_args[@]}"
origin_pid=$STARTED_PID
line="$(wait_line "$LOG_DIR/origin.out" '^listening ' "$origin_pid")" || {
    echo "load.sh: fast_origin did not start: $(tail_err origin)" >&2
    exit 1
}
ORIGIN_PORT="$(port_of "$line")"
ORIGIN="127.0.0.1:$ORIGIN_PORT"
wait_http "http://$ORIGIN/free/x" 200 "$origin_pid" || {
    echo "load.sh: fast_origin on $ORIGIN does not answer" >&2
    exit 1
}
URL[origin]="http://$ORIGIN/free/x"
SID[origin]=$origin_pid
log "origin on $ORIGIN"

# 2. nginx proxy_pass
NGINX_PREFIX="$TMP_DIR/nginx"
mkdir -p "$NGINX_PREFIX"
chmod 755 "$TMP_DIR" "$NGINX_PREFIX"
NGINX_PORT="$(free_port)"
sed -e "s|@WORKERS@|$THREADS|g" \
    -e "s|@PREFIX@|$NGINX_PREFIX|g" \
    -e "s|@UPSTREAM@|$ORIGIN|g" \
    -e "s|@LISTEN@|127.0.0.1:$NGINX_PORT|g" \
    "$BENCH_DIR/nginx/nginx.conf.template" >"$NGINX_PREFIX/nginx.conf"
start_bg nginx "$NGINX_BIN" -p "$NGINX_PREFIX" -e "$NGINX_PREFIX/error.log" -c "$NGINX_PREFIX/nginx.conf"
nginx_pid=$STARTED_PID
if wait_http "http://127.0.0.1:$NGINX_PORT/free/x" 200 "$nginx_pid"; then
    URL[nginx]="http://127.0.0.1:$NGINX_PORT/free/x"
    SID[nginx]=$nginx_pid
    log "nginx on 127.0.0.1:$NGINX_PORT ($THREADS workers)"
else
    NA[nginx]="nginx did not become ready: $(tail -n 3 "$NGINX_PREFIX/error.log" 2>/dev/null | tr '\n' ' ')$(tail_err nginx)"
fi

# 3. bare pingora
PINGORA_PORT="$(free_port)"
start_bg bare-pingora "$PINGORA_BIN" "$ORIGIN" "127.0.0.1:$PINGORA_PORT" "$THREADS"
pingora_pid=$STARTED_PID
if wait_http "http://127.0.0.1:$PINGORA_PORT/free/x" 200 "$pingora_pid"; then
    URL[bare-pingora]="http://127.0.0.1:$PINGORA_PORT/free/x"
    SID[bare-pingora]=$pingora_pid
    log "bare pingora on 127.0.0.1:$PINGORA_PORT ($THREADS threads)"
else
    NA[bare-pingora]="bare_pingora did not become ready: $(tail_err bare-pingora)"
fi

# 4-7. tollgate. With anvil (and examples/devchain.rs to deploy the test token) it
# gets a chain, so one real payment through `tollgate fetch` yields a receipt for the
# paid-replay row; every tollgate row is then served by that same process. Without
# anvil the replay row is n/a and tollgate runs without a chain, as before.
REPLAY_NA=""
ANVIL_BIN="${BENCH_ANVIL:-}"
if [[ -z $ANVIL_BIN ]]; then
    for a in "$ROOT"/chain/node_modules/@foundry-rs/anvil-linux-*/bin/anvil; do
        [[ -x $a ]] && ANVIL_BIN=$a && break
    done
fi
[[ -z $ANVIL_BIN ]] && ANVIL_BIN="$(command -v anvil 2>/dev/null || true)"
CHAIN_CONF=""
if [[ -n $TOLLGATE_NA ]]; then
    REPLAY_NA="$TOLLGATE_NA"
elif [[ -n $DEVCHAIN_NA ]]; then
    REPLAY_NA="$DEVCHAIN_NA"
elif [[ -z $ANVIL_BIN || ! -x $ANVIL_BIN ]]; then
    REPLAY_NA="no anvil (npm ci in chain/, or BENCH_ANVIL); cargo bench --bench payments has replay rows"
else
    ANVIL_PORT="$(free_port)"
    RPC="http://127.0.0.1:$ANVIL_PORT"
    # automine: each transfer is mined at once (confirmations = 1 below)
    start_bg anvil "$ANVIL_BIN" --host 127.0.0.1 --port "$ANVIL_PORT" --chain-id 1337 \
        --mnemonic "test test test test test test test test test test test junk"
    anvil_pid=$STARTED_PID
    if ! wait_line "$LOG_DIR/anvil.out" 'Listening on' "$anvil_pid" >/dev/null; then
        REPLAY_NA="anvil did not start: $(tail_err anvil)"
    elif ! TOKEN="$("$DEVCHAIN_BIN" deploy "$RPC" 2>"$LOG_DIR/devchain.err")"; then
        REPLAY_NA="token deploy failed: $(tail_err devchain)"
    else
        log "anvil on $RPC (chain 1337), test 0xBTC at $TOKEN"
        # xpub: m/44'/60'/1'/0 of anvil's dev mnemonic (as config/demo-chain.toml)
        CHAIN_CONF="
[store]
url = \"sqlite://$TMP_DIR/tollgate.db\"

[chain]
rpc_urls = [\"$RPC\"]
chain_id = 1337
token = \"$TOKEN\"
confirmations = 1
poll_interval = \"1s\"
xpub = \"xpub6EFHUEbYV13535ChA9yg5xZTWowwFCmFoWnhLbwkd91xHoirGu89GTZwBSUBnBpFeY5EV2cgof8yuyDnkeGALcD8DgGYJSiQfkxKpunWTX1\"
start_block = 0

[payments]
expiry = \"30m\"
access_ttl = \"1d\"
"
    fi
fi
if [[ -z $TOLLGATE_NA ]]; then
    TG_PORT="$(free_port)"
    TG_CONF="$TMP_DIR/tollgate.toml"
    cat >"$TG_CONF" <<EOF
[server]
listen = "127.0.0.1:$TG_PORT"
public_url = "http://127.0.0.1:$TG_PORT"
upstream = "$ORIGIN"
threads = $THREADS

[secrets]
receipt_key_env = "TOLLGATE_RECEIPT_KEY"
$CHAIN_CONF
[[route]]
path = "/paid/*"
price = "0.5"
summary = "Bench {path}"
EOF
    receipt_key="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    start_bg tollgate env TOLLGATE_RECEIPT_KEY="$receipt_key" "$TOLLGATE_BIN" serve --config "$TG_CONF"
    tg_pid=$STARTED_PID
    if ! wait_line "$LOG_DIR/tollgate.out" '^tollgate ready' "$tg_pid" >/dev/null; then
        if is_alive "$tg_pid"; then
            TOLLGATE_NA="tollgate not ready within ${READY_TIMEOUT}s"
        else
            TOLLGATE_NA="tollgate exited before ready"
        fi
        tg_err="$(tail_err tollgate)"
        if [[ -n $tg_err ]]; then TOLLGATE_NA+=": $tg_err"; fi
    elif ! wait_http "http://127.0.0.1:$TG_PORT/free/x" 200 "$tg_pid"; then
        TOLLGATE_NA="tollgate /free/x did not answer 200"
    else
        URL[tollgate-free]="http://127.0.0.1:$TG_PORT/free/x"
        URL[tollgate-402]="http://127.0.0.1:$TG_PORT/paid/x"
        URL[tollgate-402-html]="http://127.0.0.1:$TG_PORT/paid/x"
        for row in tollgate-free tollgate-402 tollgate-402-html tollgate-replay; do
            SID[$row]=$tg_pid
        done
        log "tollgate on 127.0.0.1:$TG_PORT ($THREADS threads${CHAIN_CONF:+, chain on $RPC})"
    fi
fi
if [[ -n $TOLLGATE_NA ]]; then
    REPLAY_NA="$TOLLGATE_NA"
    for row in tollgate-free tollgate-402 tollgate-402-html; do NA[$row]="$TOLLGATE_NA"; done
elif [[ -n $CHAIN_CONF && -z $REPLAY_NA ]]; then
    # One real payment: tollgate fetch claims, signs the transfer with anvil's dev
    # account 1 (the well-known test key, holding the deployed test 0xBTC), waits for
    # paid and stores the receipt in a throwaway wallet file; the row replays it.
    WALLET="$TMP_DIR/wallet/wallet.json"
    log "paying for /paid/x once (tollgate fetch) for the paid-replay row"
    if ! TOLLGATE_PAYER_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d \
        timeout 60 "$TOLLGATE_BIN" fetch "${URL[tollgate-402]}" --max 0.5 --rpc "$RPC" \
        --token "$TOKEN" --wallet "$WALLET" -o /dev/null \
        >"$LOG_DIR/fetch.out" 2>"$LOG_DIR/fetch.err"; then
        REPLAY_NA="tollgate fetch could not pay: $(tail_err fetch)"
    elif ! receipt="$(python3 -c 'import json, sys
w = json.load(open(sys.argv[1]))
print(next(iter(w["receipts"].values()))["receipt"])' "$WALLET" 2>/dev/null)" || [[ -z $receipt ]]; then
        REPLAY_NA="no receipt in the wallet after tollgate fetch"
    else
        URL[tollgate-replay]="${URL[tollgate-402]}"
        HDR[tollgate-replay]="Accept: application/json"$'\n'"Authorization: Tollgate $receipt"
        log "paid: the replay row sends its receipt (not written to the results)"
    fi
fi
[[ -n $REPLAY_NA ]] && NA[tollgate-replay]="$REPLAY_NA"

# 6. express + x402-express
if [[ -z $X402_NA ]]; then
    start_bg x402 node "$X402_DIR/server.js" 0
    x402_pid=$STARTED_PID
    if line="$(wait_line "$LOG_DIR/x402.out" '^listening ' "$x402_pid")"; then
        X402_PORT="$(port_of "$line")"
        if wait_http "http://127.0.0.1:$X402_PORT/__bench/facilitator-calls" 200 "$x402_pid"; then
            URL[x402-express-402]="http://127.0.0.1:$X402_PORT/paid/x"
            SID[x402-express-402]=$x402_pid
            log "x402-express on 127.0.0.1:$X402_PORT (node $(node --version))"
        else
            X402_NA="x402 server does not answer"
        fi
    else
        X402_NA="x402 server did not start: $(tail_err x402)"
    fi
fi
[[ -n $X402_NA ]] && NA[x402-express-402]="$X402_NA"

# hdr_args ROW FLAG : prints FLAG and each of the row's headers, NUL-separated (mapfile -d '').
hdr_args() {
    local h
    while IFS= read -r h; do
        [[ -n $h ]] && printf '%s\0%s\0' "$2" "$h"
    done <<<"${HDR[$1]}"
}

# Each live row must answer its expected status (402 rows: with the expected body type).
for row in "${ROWS[@]}"; do
    [[ -n ${NA[$row]:-} ]] && continue
    url="${URL[$row]}"
    mapfile -d '' hargs < <(hdr_args "$row" -H)
    got="$(curl --noproxy '*' -s -o "$RAW_DIR/$row.sample-body" -D "$RAW_DIR/$row.sample-headers" \
        --max-time 2 "${hargs[@]}" -w '%{http_code}' "$url" || true)"
    if [[ $got != "${WANT[$row]}" ]]; then
        NA[$row]="expected ${WANT[$row]} from $url, got $got"
    elif [[ -n ${CTYPE[$row]:-} ]] && ! grep -qi "^content-type: *${CTYPE[$row]}" "$RAW_DIR/$row.sample-headers"; then
        NA[$row]="${WANT[$row]} from $url is not ${CTYPE[$row]}"
    fi
done

# ---------------------------------------------------------------- load

LIVE=()
for row in "${ROWS[@]}"; do
    [[ -z ${NA[$row]:-} ]] && LIVE+=("$row")
done
if [[ ${#LIVE[@]} == 0 ]]; then
    echo "load.sh: no row could run" >&2
    exit 1
fi

# run_wrk ROW DURATION OUT : wrk with the row's headers.
run_wrk() {
    local hargs
    mapfile -d '' hargs < <(hdr_args "$1" -H)
    wrk "-t$WRK_THREADS" "-c$CONNECTIONS" --latency "${hargs[@]}" "-d$2" "${URL[$1]}" >"$3" 2>&1
}

# run_rate ROW DURATION OUT : the fixed-rate client with the row's headers.
run_rate() {
    local hargs
    mapfile -d '' hargs < <(hdr_args "$1" -H)
    "$RATE_BIN" "${URL[$1]}" --rate "$RATE" --connections "$RATE_CONNECTIONS" \
        --duration "$2" --expect "${WANT[$1]}" "${hargs[@]}" >"$3" 2>&1
}

# server_usage ROW : "CPU_TICKS CONTEXT_SWITCHES" summed over every process in the
# row's server session (nginx master + workers, node, tollgate, ...): utime + stime
# (/proc/PID/stat fields 14, 15) and voluntary + nonvoluntary switches of every task.
server_usage() {
    python3 - "${SID[$1]}" <<'PY'
import os
import sys

sid = sys.argv[1]
ticks = switches = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        if rest[3] != sid:  # field 6: session
            continue
        ticks += int(rest[11]) + int(rest[12])  # fields 14, 15
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            switches += int(line.split()[1])
            except OSError:
                pass
    except (OSError, IndexError, ValueError):
        pass
print(ticks, switches)
PY
}

if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    for row in "${LIVE[@]}"; do
        log "warm-up $row ($WARMUP)"
        if [[ $RUN_SATURATE == 1 ]]; then
            run_wrk "$row" "$WARMUP" "$RAW_DIR/$row.warmup.txt" || true
        else
            run_rate "$row" "$WARMUP" "$RAW_DIR/$row.warmup.json" || true
        fi
    done
fi

MANIFEST="$RUN_DIR/manifest.tsv"
RATE_MANIFEST="$RUN_DIR/rate-manifest.tsv"
: >"$MANIFEST"
: >"$RATE_MANIFEST"
n=${#LIVE[@]}
if [[ $RUN_RATE == 1 ]]; then
    for ((round = 1; round <= ROUNDS; round++)); do
        # Rotate the order each round so no row always follows the same neighbour.
        for ((k = 0; k < n; k++)); do
            row="${LIVE[$(((k + round - 1) % n))]}"
            out="$RAW_DIR/$row.rate.round$round.json"
            log "rate round $round/$ROUNDS: $row at $RATE req/s"
            before="$(server_usage "$row")"
            if run_rate "$row" "$DURATION" "$out"; then
                after="$(server_usage "$row")"
                printf '%s\t%s\t%s\t%s\t%s\n' "$row" "$round" "$out" "$before" "$after" >>"$RATE_MANIFEST"
            else
                log "rate_client failed for $row in round $round (see $out)"
            fi
        done
    done
fi
if [[ $RUN_SATURATE == 1 ]]; then
    for ((round = 1; round <= ROUNDS; round++)); do
        for ((k = 0; k < n; k++)); do
            row="${LIVE[$(((k + round - 1) % n))]}"
            out="$RAW_DIR/$row.round$round.txt"
            log "round $round/$ROUNDS: $row"
            if run_wrk "$row" "$DURATION" "$out"; then
                printf '%s\t%s\t%s\n' "$row" "$round" "$out" >>"$MANIFEST"
            else
                log "wrk failed for $row in round $round (see $out)"
            fi
        done
    done
fi

FACILITATOR_CALLS="n/a"
if [[ -n ${URL[x402-express-402]:-} ]]; then
    FACILITATOR_CALLS="$(curl --noproxy '*' -s --max-time 2 \
        "http://127.0.0.1:$X402_PORT/__bench/facilitator-calls" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["calls"])' 2>/dev/null || echo '?')"
fi

# ---------------------------------------------------------------- report

ROWS_TSV="$RUN_DIR/rows.tsv"
: >"$ROWS_TSV"
for row in "${ROWS[@]}"; do
    printf '%s\t%s\t%s\n' "$row" "${WANT[$row]}" "${NA[$row]:-}" >>"$ROWS_TSV"
done

x402_version="$(node -p 'require(process.argv[1]).version' "$X402_DIR/node_modules/x402-express/package.json" 2>/dev/null || echo '?')"
CLK_TCK="$(getconf CLK_TCK)"
{
    if [[ $RUN_RATE == 1 ]]; then
        echo "rate: examples/rate_client.rs at $RATE req/s over $RATE_CONNECTIONS keep-alive connections (open loop), ${DURATION%s}s, $ROUNDS interleaved rounds, median per metric; server CPU from /proc at $CLK_TCK ticks/s"
    fi
    if [[ $RUN_SATURATE == 1 ]]; then
        echo "saturate: wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS interleaved rounds, median per metric"
    fi
    echo "proxies: $THREADS threads / nginx workers; host: $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "versions: tollgate $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'), $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), node $(node --version 2>/dev/null || echo '?'), x402-express $x402_version"
    echo "x402-express facilitator calls during the run: $FACILITATOR_CALLS"
} >"$RUN_DIR/header.txt"

python3 - "$MANIFEST" "$RATE_MANIFEST" "$ROWS_TSV" "$RUN_DIR/header.txt" "$RUN_DIR/results.md" \
    "$CLK_TCK" "$RUN_RATE" "$RUN_SATURATE" <<'PY'
import json
import re
import statistics
import sys

manifest, rate_manifest, rows_tsv, header_file, out_file = sys.argv[1:6]
clk_tck = int(sys.argv[6])
run_rate, run_saturate = sys.argv[7] == "1", sys.argv[8] == "1"

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"bad latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    r = {}
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if not m:
        raise ValueError(f"no Requests/sec in {path}")
    r["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", text, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency in {path}")
        r["p" + pct] = to_ms(m.group(1))
    m = re.search(r"^\s*([0-9]+) requests in", text, re.M)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s*([0-9]+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(
        r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", text
    )
    r["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def parse_rate(path, before, after):
    text = open(path, encoding="utf-8", errors="replace").read().strip()
    try:
        j = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise ValueError(f"no JSON line in {path}")
    ticks0, sw0 = (int(x) for x in before.split())
    ticks1, sw1 = (int(x) for x in after.split())
    ok = j["ok"]
    if ok == 0:
        raise ValueError(f"no request answered as expected ({path})")
    return {
        "offered": j["offered_rps"],
        "served": ok / j["elapsed_s"],
        "cpu": (ticks1 - ticks0) * 1e6 / clk_tck / ok,
        "ctx": (sw1 - sw0) / ok,
        "p50": j["p50_ms"],
        "p99": j["p99_ms"],
        "errors": j["errors"] + j["status_other"],
        "status_other": j["status_other"],
        "sent": j["sent"],
        "ok": ok,
        "tick_us": 1e6 / clk_tck / ok,
    }


rows = []
want = {}
na = {}
for line in open(rows_tsv, encoding="utf-8"):
    name, code, reason = (line.rstrip("\n").split("\t") + ["", ""])[:3]
    rows.append(name)
    want[name] = int(code)
    na[name] = reason

notes = []

sat_runs = {name: [] for name in rows}
if run_saturate:
    for line in open(manifest, encoding="utf-8"):
        name, rnd, path = line.rstrip("\n").split("\t")
        try:
            r = parse_wrk(path)
        except ValueError as e:
            notes.append(f"saturate: {name} round {rnd}: {e}")
            continue
        if r["sockerr"]:
            notes.append(f"saturate: {name} round {rnd}: {r['sockerr']} socket errors")
        if want[name] == 200 and r["non2xx"]:
            notes.append(f"saturate: {name} round {rnd}: {r['non2xx']} non-2xx responses (expected 200s)")
        if want[name] == 402 and r["non2xx"] != r["requests"]:
            notes.append(
                f"saturate: {name} round {rnd}: {r['requests'] - r['non2xx']} of {r['requests']} "
                "responses were not 402-like (non-2xx expected)"
            )
        sat_runs[name].append(r)

rate_runs = {name: [] for name in rows}
if run_rate:
    for line in open(rate_manifest, encoding="utf-8"):
        name, rnd, path, before, after = line.rstrip("\n").split("\t")
        try:
            r = parse_rate(path, before, after)
        except (ValueError, KeyError) as e:
            notes.append(f"rate: {name} round {rnd}: {e}")
            continue
        if r["errors"]:
            notes.append(
                f"rate: {name} round {rnd}: {r['errors']} errors "
                f"({r['status_other']} answers other than {want[name]})"
            )
        if r["served"] < 0.95 * r["offered"]:
            notes.append(
                f"rate: {name} round {rnd}: served {r['served']:,.0f} of {r['offered']:,.0f} req/s offered "
                "(saturated, or the client fell behind)"
            )
        rate_runs[name].append(r)


def medians(runs, keys):
    out = {}
    for name in rows:
        if runs[name]:
            out[name] = {k: statistics.median(r[k] for r in runs[name]) for k in keys}
    return out


sat = medians(sat_runs, ("rps", "p50", "p99"))
rate = medians(rate_runs, ("offered", "served", "cpu", "ctx", "p50", "p99", "errors", "tick_us"))


def fmt_ms(v):
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def ratio_lines(title, table, key, pairs):
    out = ["", f"| ratio ({title}) | value |", "| --- | ---: |"]
    for a, b in pairs:
        value = f"{table[a][key] / table[b][key]:.2f}x" if a in table and b in table and table[b][key] else "n/a"
        out.append(f"| {a} / {b} | {value} |")
    return out


lines = []
if run_rate:
    lines += [
        "## Fixed rate: cost per request",
        "",
        "| row | offered req/s | served req/s | CPU µs/req | ctx sw/req | p50 | p99 | errors | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in rows:
        if name in rate:
            m = rate[name]
            lines.append(
                f"| {name} | {m['offered']:,.0f} | {m['served']:,.0f} | {m['cpu']:.1f} | {m['ctx']:.2f} "
                f"| {fmt_ms(m['p50'])} | {fmt_ms(m['p99'])} | {m['errors']:.0f} | {len(rate_runs[name])} |"
            )
        else:
            lines.append(f"| {name} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0 |")
    ticks = [rate[n]["tick_us"] for n in rate]
    if ticks:
        lines += [
            "",
            f"CPU resolution: one clock tick is {max(ticks):.1f} µs/req at most in this run "
            "(longer runs or higher rates make it finer).",
        ]
    lines += ratio_lines(
        "median CPU µs/req; above 1 costs more",
        rate,
        "cpu",
        [
            ("tollgate-free", "nginx"),
            ("tollgate-free", "bare-pingora"),
            ("bare-pingora", "nginx"),
            ("tollgate-402", "tollgate-free"),
            ("tollgate-402-html", "tollgate-free"),
            ("tollgate-replay", "tollgate-free"),
            ("x402-express-402", "tollgate-402"),
        ],
    )
if run_saturate:
    if lines:
        lines.append("")
    lines += [
        "## Saturated: req/s",
        "",
        "| row | req/s | p50 | p99 | runs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in rows:
        if name in sat:
            m = sat[name]
            lines.append(
                f"| {name} | {m['rps']:,.0f} | {fmt_ms(m['p50'])} | {fmt_ms(m['p99'])} | {len(sat_runs[name])} |"
            )
        else:
            lines.append(f"| {name} | n/a | n/a | n/a | 0 |")
    lines += ratio_lines(
        "median req/s",
        sat,
        "rps",
        [
            ("tollgate-free", "nginx"),
            ("tollgate-free", "bare-pingora"),
            ("bare-pingora", "nginx"),
            ("tollgate-402", "tollgate-free"),
            ("tollgate-402-html", "tollgate-free"),
            ("tollgate-replay", "tollgate-free"),
            ("tollgate-402", "x402-express-402"),
        ],
    )

skipped = [
    f"- {name}: n/a ({na[name] or 'no successful run'})"
    for name in rows
    if (run_rate and name not in rate) or (run_saturate and name not in sat)
]
header = open(header_file, encoding="utf-8").read().strip()
report = "\n".join(
    ["# tollgate load benchmark", "", header.replace("\n", "  \n"), ""]
    + lines
    + ([""] + ["Skipped rows:"] + skipped if skipped else [])
    + ([""] + ["Notes:"] + [f"- {n}" for n in notes] if notes else [])
) + "\n"
with open(out_file, "w", encoding="utf-8") as f:
    f.write(report)
sys.stdout.write(report)
PY

cp "$RUN_DIR/results.md" "$OUT_BASE/latest.md"
log "results: $RUN_DIR/results.md (raw outputs in $RAW_DIR, server logs in $LOG_DIR)"
