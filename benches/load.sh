#!/usr/bin/env bash
# Load benchmark (not a test): the same fast origin behind nothing, nginx,
# a bare Pingora pass-through, tollgate (free and 402 paths), and express with
# the x402-express middleware (402 path), all loaded by the same wrk command.
#
# Rows run interleaved for several rounds (the machine is shared and noisy);
# the table reports the median of each metric across rounds.
#
# Usage: benches/load.sh
# Environment (defaults in brackets):
#   BENCH_DURATION [8s]       wrk -d for each measured run
#   BENCH_CONNECTIONS [64]    wrk -c
#   BENCH_WRK_THREADS [2]     wrk -t
#   BENCH_ROUNDS [3]          rounds; each row runs once per round
#   BENCH_WARMUP [2s]         one unmeasured wrk run per row first ("0" skips)
#   BENCH_THREADS [2]         tollgate threads = nginx workers = bare_pingora threads
#   BENCH_ORIGIN_THREADS []   fast_origin worker threads (default: one per core)
#   BENCH_READY_TIMEOUT [10]  seconds to wait for each server to become ready
#   BENCH_SKIP_BUILD [0]      1 = use the existing target/release binaries
#   BENCH_TOLLGATE_BIN []     run this tollgate binary instead of target/release/tollgate
#   BENCH_OUT [benches/out]   where results and raw wrk outputs go
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

for v in CONNECTIONS WRK_THREADS ROUNDS THREADS READY_TIMEOUT; do
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

command -v wrk >/dev/null 2>&1 || apt_install wrk
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
cd "$ROOT"
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    if ! cargo build --release --bin tollgate --example bare_pingora --example fast_origin >&2; then
        log "full build failed; building the examples alone (tollgate rows will be n/a)"
        TOLLGATE_NA="tollgate failed to build"
        if ! cargo build --release --example bare_pingora --example fast_origin >&2; then
            echo "load.sh: cannot build the bench examples (see cargo's output above)" >&2
            exit 1
        fi
    fi
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ORIGIN_BIN="$TARGET_DIR/release/examples/fast_origin"
PINGORA_BIN="$TARGET_DIR/release/examples/bare_pingora"
TOLLGATE_BIN="${BENCH_TOLLGATE_BIN:-$TARGET_DIR/release/tollgate}"
for b in "$ORIGIN_BIN" "$PINGORA_BIN"; do
    [[ -x $b ]] || { echo "load.sh: missing $b" >&2; exit 1; }
done
if [[ -z $TOLLGATE_NA && ! -x $TOLLGATE_BIN ]]; then
    TOLLGATE_NA="no tollgate binary"
fi

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
ROWS=(origin nginx bare-pingora tollgate-free tollgate-402 x402-express-402)
declare -A URL=() WANT=() NA=()
WANT[origin]=200 WANT[nginx]=200 WANT[bare-pingora]=200
WANT[tollgate-free]=200 WANT[tollgate-402]=402 WANT[x402-express-402]=402

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
    log "bare pingora on 127.0.0.1:$PINGORA_PORT ($THREADS threads)"
else
    NA[bare-pingora]="bare_pingora did not become ready: $(tail_err bare-pingora)"
fi

# 4/5. tollgate
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
        log "tollgate on 127.0.0.1:$TG_PORT ($THREADS threads)"
    fi
fi
if [[ -n $TOLLGATE_NA ]]; then
    NA[tollgate-free]="$TOLLGATE_NA"
    NA[tollgate-402]="$TOLLGATE_NA"
fi

# 6. express + x402-express
if [[ -z $X402_NA ]]; then
    start_bg x402 node "$X402_DIR/server.js" 0
    x402_pid=$STARTED_PID
    if line="$(wait_line "$LOG_DIR/x402.out" '^listening ' "$x402_pid")"; then
        X402_PORT="$(port_of "$line")"
        if wait_http "http://127.0.0.1:$X402_PORT/__bench/facilitator-calls" 200 "$x402_pid"; then
            URL[x402-express-402]="http://127.0.0.1:$X402_PORT/paid/x"
            log "x402-express on 127.0.0.1:$X402_PORT (node $(node --version))"
        else
            X402_NA="x402 server does not answer"
        fi
    else
        X402_NA="x402 server did not start: $(tail_err x402)"
    fi
fi
[[ -n $X402_NA ]] && NA[x402-express-402]="$X402_NA"

# Each live row must answer its expected status (402 rows: with a JSON body).
for row in "${ROWS[@]}"; do
    [[ -n ${NA[$row]:-} ]] && continue
    url="${URL[$row]}"
    got="$(curl --noproxy '*' -s -o "$RAW_DIR/$row.sample-body" -D "$RAW_DIR/$row.sample-headers" \
        --max-time 2 -H 'Accept: application/json' -w '%{http_code}' "$url" || true)"
    if [[ $got != "${WANT[$row]}" ]]; then
        NA[$row]="expected ${WANT[$row]} from $url, got $got"
    elif [[ ${WANT[$row]} == 402 ]] && ! grep -qi '^content-type: *application/json' "$RAW_DIR/$row.sample-headers"; then
        NA[$row]="402 from $url is not JSON"
    fi
done

# ---------------------------------------------------------------- load

WRK=(wrk "-t$WRK_THREADS" "-c$CONNECTIONS" --latency -H 'Accept: application/json')
LIVE=()
for row in "${ROWS[@]}"; do
    [[ -z ${NA[$row]:-} ]] && LIVE+=("$row")
done
if [[ ${#LIVE[@]} == 0 ]]; then
    echo "load.sh: no row could run" >&2
    exit 1
fi

if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    for row in "${LIVE[@]}"; do
        log "warm-up $row ($WARMUP)"
        "${WRK[@]}" "-d$WARMUP" "${URL[$row]}" >"$RAW_DIR/$row.warmup.txt" 2>&1 || true
    done
fi

MANIFEST="$RUN_DIR/manifest.tsv"
: >"$MANIFEST"
for ((round = 1; round <= ROUNDS; round++)); do
    # Rotate the order each round so no row always follows the same neighbour.
    n=${#LIVE[@]}
    for ((k = 0; k < n; k++)); do
        row="${LIVE[$(((k + round - 1) % n))]}"
        out="$RAW_DIR/$row.round$round.txt"
        log "round $round/$ROUNDS: $row"
        if "${WRK[@]}" "-d$DURATION" "${URL[$row]}" >"$out" 2>&1; then
            printf '%s\t%s\t%s\n' "$row" "$round" "$out" >>"$MANIFEST"
        else
            log "wrk failed for $row in round $round (see $out)"
        fi
    done
done

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
{
    echo "generator: wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS interleaved rounds, median per metric"
    echo "proxies: $THREADS threads / nginx workers; host: $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "versions: tollgate $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'), $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), node $(node --version 2>/dev/null || echo '?'), x402-express $x402_version"
    echo "x402-express facilitator calls during the run: $FACILITATOR_CALLS"
} >"$RUN_DIR/header.txt"

python3 - "$MANIFEST" "$ROWS_TSV" "$RUN_DIR/header.txt" "$RUN_DIR/results.md" <<'PY'
import re
import statistics
import sys

manifest, rows_tsv, header_file, out_file = sys.argv[1:5]

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


rows = []
want = {}
na = {}
for line in open(rows_tsv, encoding="utf-8"):
    name, code, reason = (line.rstrip("\n").split("\t") + ["", ""])[:3]
    rows.append(name)
    want[name] = int(code)
    na[name] = reason

runs = {name: [] for name in rows}
notes = []
for line in open(manifest, encoding="utf-8"):
    name, rnd, path = line.rstrip("\n").split("\t")
    try:
        r = parse_wrk(path)
    except ValueError as e:
        notes.append(f"{name} round {rnd}: {e}")
        continue
    if r["sockerr"]:
        notes.append(f"{name} round {rnd}: {r['sockerr']} socket errors")
    if want[name] == 200 and r["non2xx"]:
        notes.append(f"{name} round {rnd}: {r['non2xx']} non-2xx responses (expected 200s)")
    if want[name] == 402 and r["non2xx"] != r["requests"]:
        notes.append(
            f"{name} round {rnd}: {r['requests'] - r['non2xx']} of {r['requests']} "
            "responses were not 402-like (non-2xx expected)"
        )
    runs[name].append(r)

med = {}
for name in rows:
    if runs[name]:
        med[name] = {k: statistics.median(r[k] for r in runs[name]) for k in ("rps", "p50", "p99")}
    elif not na[name]:
        na[name] = "no successful run"


def fmt_ms(v):
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


lines = [
    "| row | req/s | p50 | p99 | runs |",
    "| --- | ---: | ---: | ---: | ---: |",
]
for name in rows:
    if name in med:
        m = med[name]
        lines.append(
            f"| {name} | {m['rps']:,.0f} | {fmt_ms(m['p50'])} | {fmt_ms(m['p99'])} | {len(runs[name])} |"
        )
    else:
        lines.append(f"| {name} | n/a | n/a | n/a | 0 |")

ratios = [
    ("tollgate-free / nginx", "tollgate-free", "nginx"),
    ("tollgate-free / bare-pingora", "tollgate-free", "bare-pingora"),
    ("tollgate-402 / tollgate-free", "tollgate-402", "tollgate-free"),
    ("tollgate-402 / x402-express-402", "tollgate-402", "x402-express-402"),
]
lines += ["", "| ratio (median req/s) | value |", "| --- | ---: |"]
for label, a, b in ratios:
    value = f"{med[a]['rps'] / med[b]['rps']:.2f}x" if a in med and b in med else "n/a"
    lines.append(f"| {label} | {value} |")

skipped = [f"- {name}: n/a ({na[name]})" for name in rows if name not in med]
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
log "results: $RUN_DIR/results.md (raw wrk output in $RAW_DIR, server logs in $LOG_DIR)"
