#!/usr/bin/env bash
# Several `warden serve` nodes on etcd (issue 15), measured in one run on
# this machine: the KV counter example (every request a sealed, durable
# increment of one shared counter) under wrk, requests/s and p99, for
#   1 node with its store in a redb file,
#   1 node with its store on a 3-member etcd cluster,
#   2 nodes on that cluster (the deployment published by `warden deploy`),
#     wrk against both at once (half the connections each).
# The etcd members run here too: all of it shares this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
bash scripts/setup.sh >/dev/null
# shellcheck source=bench/lib/servers.sh
. bench/lib/servers.sh
need wrk wrk; need curl curl
T=${CARGO_TARGET_DIR:-$PWD/target}
out=$T/bench-cluster
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q -p warden
W=$T/release/warden
cargo build --release -q --target wasm32-wasip2 --manifest-path examples/http/Cargo.toml --target-dir "$T/bench-examples"
COUNTER=$T/bench-examples/wasm32-wasip2/release/kv_counter.wasm
export WARDEN_CACHE_DIR=$out/cache WARDEN_KEY_FILE=$out/store.key

# A 3-member etcd cluster on free loopback ports.
read -r -a ports < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
initial=""
for i in 0 1 2; do
  initial+="${initial:+,}m$i=http://127.0.0.1:${ports[$((i + 3))]}"
done
ETCD_PIDS=()
stop_etcd() {
  stop
  for p in "${ETCD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap stop_etcd EXIT
for i in 0 1 2; do
  etcd --name "m$i" --data-dir "$out/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${ports[$i]}" --advertise-client-urls "http://127.0.0.1:${ports[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token bench \
    >"$out/etcd$i.log" 2>&1 &
  ETCD_PIDS+=($!)
done
for _ in $(seq 300); do
  curl -s "http://127.0.0.1:${ports[0]}/health" | grep -q '"health":"true"' && break
  sleep 0.1
done
ETCD="etcd://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

printf '[[app]]\nname = "counter"\nroute = "/..."\ncomponent = "%s"\n' "$COUNTER" > "$out/counter.toml"
declare -A RPS P99

# 1 node, redb.
start redb "$W" serve "$out/counter.toml" --addr 127.0.0.1:0 --no-watch --store "$out/store.redb"
read -r RPS[redb] P99[redb] bad < <(load "${url}c" "$CONNS")
[ "$bad" = 0 ] || echo "bench: redb answered $bad non-2xx"
stop

# 1 node, etcd.
start one "$W" serve "$out/counter.toml" --addr 127.0.0.1:0 --no-watch --store "$ETCD/one"
read -r RPS[one] P99[one] bad < <(load "${url}c" "$CONNS")
[ "$bad" = 0 ] || echo "bench: 1 node on etcd answered $bad non-2xx"
stop

# 2 nodes, etcd, the deployment published.
"$W" deploy --store "$ETCD/two" "$out/counter.toml" >/dev/null
start a "$W" serve --addr 127.0.0.1:0 --store "$ETCD/two"; url_a=$url
start b "$W" serve --addr 127.0.0.1:0 --store "$ETCD/two"; url_b=$url
half=$((CONNS / 2))
load "${url_a}c" "$half" > "$out/a.txt" &
wa=$!
load "${url_b}c" "$half" > "$out/b.txt"
wait "$wa"
read -r ra pa ba < "$out/a.txt"
read -r rb pb bb < "$out/b.txt"
[ "$ba" = 0 ] && [ "$bb" = 0 ] || echo "bench: 2 nodes answered $ba + $bb non-2xx"
RPS[two]=$((ra + rb))
P99[two]=$(awk -v a="$pa" -v b="$pb" 'BEGIN {print (a > b ? a : b)}')
stop

printf '%-52s %10s %9s %10s\n' "KV counter, $CONNS conns, wrk -t2" "req/s" "p99 ms" "vs redb"
for s in redb one two; do
  case $s in
    redb) label="1 node, store in a redb file";;
    one) label="1 node, store on 3-member etcd";;
    two) label="2 nodes, store on 3-member etcd";;
  esac
  ratio=$(awk -v a="${RPS[$s]}" -v b="${RPS[redb]}" 'BEGIN {printf "%.2f", a/b}')
  printf '%-52s %10s %9s %10s\n' "$label" "${RPS[$s]}" "${P99[$s]}" "$ratio"
done
