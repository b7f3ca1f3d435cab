#!/usr/bin/env bash
# Gateway benchmark: start_payment calls per second and status.json reads per second
# against the embedded SQLite store (synchronous=FULL: every start_payment is a
# durable commit). Not a test: prints a table. Loopback only; stops what it starts.
#
#   benches/gateway.sh            (BENCH_DURATION=10s BENCH_CONNECTIONS=32 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bash scripts/install-test-deps >/dev/null
cargo build --release --quiet --bin tollgate --example devchain --example fast_origin

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

anvil=chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
"$anvil" --host 127.0.0.1 --port 0 --chain-id 31337 >"$work/anvil.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q "Listening on" "$work/anvil.log" && break; sleep 0.05; done
rpc="http://$(grep -o 'Listening on [0-9.:]*' "$work/anvil.log" | awk '{print $3}')"
token=$(target/release/examples/devchain deploy "$rpc")

target/release/examples/fast_origin 0 1 >"$work/origin.out" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q listening "$work/origin.out" && break; sleep 0.05; done
origin=$(awk '/listening/{print $2; exit}' "$work/origin.out")

cat >"$work/tollgate.toml" <<TOML
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
upstream = "$origin"
threads = 2
grace_period = "1s"
[admin]
listen = "127.0.0.1:0"
[gateway]
listen = "127.0.0.1:0"
[store]
url = "sqlite://$work/tollgate.db"
[secrets]
receipt_key_env = "K"
postback_key_env = "K"
[chain]
rpc_urls = ["$rpc"]
chain_id = 31337
token = "$token"
xpub = "xpub6EFHUEbYV13535ChA9yg5xZTWowwFCmFoWnhLbwkd91xHoirGu89GTZwBSUBnBpFeY5EV2cgof8yuyDnkeGALcD8DgGYJSiQfkxKpunWTX1"
TOML
K=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export K
RUST_LOG=warn target/release/tollgate serve --config "$work/tollgate.toml" >"$work/tg.out" 2>"$work/tg.err" &
pids+=($!)
for _ in $(seq 400); do grep -q "ready: public" "$work/tg.out" && break; sleep 0.05; done
gw=$(awk '/ready: gateway/{print $4; exit}' "$work/tg.out")

[ -n "$gw" ] || { echo "gateway did not come up:"; cat "$work/tg.out" "$work/tg.err"; exit 1; }
id=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}' "$gw/" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["id"])')

run() { wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$@" 2>&1; }
sp=$(run -s benches/start_payment.lua "$gw/")
st=$(run "$gw/$id/status.json")
row() {
  python3 - "$1" "$2" <<'PY'
import re, sys
name, out = sys.argv[1], sys.argv[2]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
def lat(p):
    m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"| {name} | {float(rps):,.0f} | {lat(50):.2f} ms | {lat(99):.2f} ms | {errs.group(1) if errs else 0} |")
PY
}
echo "wrk -t2 -c$CONNS -d$DURATION; tollgate 2 threads; SQLite WAL synchronous=FULL; $(nproc) cores"
echo
echo "| endpoint | req/s | p50 | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: | ---: |"
row "start_payment (JSON-RPC, durable)" "$sp"
row "GET /{id}/status.json" "$st"
count=$(target/release/tollgate addresses --config "$work/tollgate.toml" --used 2>/dev/null | tail -n +2 | wc -l) || true
echo
echo "payments created during the run: $count (every one with its own index and address)"
