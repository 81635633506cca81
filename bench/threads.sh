#!/usr/bin/env bash
# Threads benchmark (issue 14): the same C program (bench/threads/threads.c)
# built natively with `gcc -pthread` and as a cage with `warden cc
# -pthread`, measured side by side in one run:
#   pthread_create + pthread_join latency;
#   an uncontended mutex lock/unlock, and a contended one (2 threads);
#   a producer/consumer round trip through a condition variable;
#   an embarrassingly parallel loop on 1 and on 2 threads (the speed-up).
# Each figure is the median of REPS runs (default 5), native and warden
# interleaved. Targets: speed-up >= 1.8x on 2 threads; create+join and the
# mutex round trips within 2x native.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
bash scripts/setup.sh >/dev/null
T=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p warden
W=$T/release/warden
out=$T/bench-threads
rm -rf "$out" && mkdir -p "$out"
export WARDEN_CACHE_DIR="$out/cache"
gcc -O2 -pthread -o "$out/native" bench/threads/threads.c
"$W" cc -pthread -O2 bench/threads/threads.c -o "$out/threads.wasm"
"$W" run --allow threads "$out/threads.wasm" create 1 >/dev/null  # warm the compile cache

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A NAT WAR
measure() { # what n
  local n=() w=()
  for _ in $(seq "$REPS"); do
    n+=("$("$out/native" "$1" "$2")")
    w+=("$("$W" run --allow threads "$out/threads.wasm" "$1" "$2")")
  done
  NAT[$1]=$(printf '%s\n' "${n[@]}" | median)
  WAR[$1]=$(printf '%s\n' "${w[@]}" | median)
}
measure create 5000
measure uncontended 5000000
measure contended 1000000
measure condvar 50000
measure parallel1 200000000
measure parallel2 200000000

row() { # label what unit
  printf '%-44s %12s %12s %8s\n' "$1" "${NAT[$2]}" "${WAR[$2]}" \
    "$(awk -v a="${WAR[$2]}" -v b="${NAT[$2]}" 'BEGIN {printf "%.2f", a/b}')"
}
printf '%-44s %12s %12s %8s\n' "measurement" "native" "warden" "ratio"
row "pthread_create + join (ns)" create
row "mutex lock+unlock, uncontended (ns)" uncontended
row "mutex lock+unlock, 2 threads contending (ns)" contended
row "condvar round trip (ns)" condvar
row "parallel loop, 1 thread (ms)" parallel1
row "parallel loop, 2 threads (ms)" parallel2
awk -v n1="${NAT[parallel1]}" -v n2="${NAT[parallel2]}" -v w1="${WAR[parallel1]}" -v w2="${WAR[parallel2]}" \
  'BEGIN {printf "speed-up on 2 threads: native %.2fx, warden %.2fx (target >= 1.8x)\n", n1/n2, w1/w2}'
echo "targets: create+join and mutex round trips within 2x native"
