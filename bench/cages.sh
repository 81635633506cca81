#!/usr/bin/env bash
# Cages benchmark (issue 3): the same C programs built natively with gcc and
# as cages with `warden cc`, measured side by side in one run.
#   fork + _exit + waitpid latency with 1, 16 and 64 MiB of touched heap,
#   in a loop and for a process's first fork
#   pipe throughput between two processes, 64 KiB writes
#   fork + exec + waitpid latency
# Each figure is the median of REPS runs (default 5), native and warden
# interleaved. Prints a table with warden/native ratios and the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
bash scripts/setup.sh >/dev/null
cargo build --release -q -p warden
W=${CARGO_TARGET_DIR:-$PWD/target}/release/warden
out=$PWD/target/bench-cages
rm -rf "$out" && mkdir -p "$out/bin"
export WARDEN_CACHE_DIR="$out/cache"
for p in fork_wait pipe_throughput exec_wait; do
  gcc -O2 -o "$out/native_$p" "bench/cages/$p.c"
  "$W" cc -O2 "bench/cages/$p.c" -o "$out/bin/$p.wasm"
done
# Warm the compile cache so no run below compiles; then again once the
# modules and artifacts are 2 s old, as a user's are, so that warden maps
# cached code without hashing it (see docs/threat-model.md, the cache).
warm() {
  "$W" run --allow process "$out/bin/fork_wait.wasm" 1 1 >/dev/null
  "$W" run --allow process "$out/bin/pipe_throughput.wasm" 1 >/dev/null
  "$W" run --allow process --dir "$out/bin::/bin" "$out/bin/exec_wait.wasm" /bin/exec_wait.wasm 1 >/dev/null
}
warm
sleep 2.1
warm

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # name, native command, warden command
  local n=() w=()
  for _ in $(seq "$REPS"); do
    n+=("$(eval "$2")")
    w+=("$(eval "$3")")
  done
  printf '%s\n' "${n[@]}" | median
  printf '%s\n' "${w[@]}" | median
}

printf '%-34s %12s %12s %8s %s\n' "measure" "native" "warden" "ratio" "target"
row() { # label, unit, native, warden, ratio expression, target text
  printf '%-34s %10s %s %10s %s %8s %s\n' "$1" "$3" "$2" "$4" "$2" "$5" "$6"
}
for mib in 1 16 64; do
  iters=$(( mib == 64 ? 30 : (mib == 16 ? 100 : 300) ))
  read -r n w < <(measure "fork $mib" "$out/native_fork_wait $mib $iters" \
    "$W run --allow process $out/bin/fork_wait.wasm $mib $iters" | paste -sd' ')
  ratio=$(awk -v a="$w" -v b="$n" 'BEGIN {printf "%.2f", a/b}')
  target="(lower is better; target <= 1.0)"
  [ "$mib" = 64 ] && target="(lower is better; no target)"
  row "fork+_exit+waitpid, $mib MiB heap" "us" "$n" "$w" "$ratio" "$target"
done
# A process's first fork, alone: warden freezes the memory's file then.
for mib in 1 16 64; do
  read -r n w < <(measure "first $mib" "$out/native_fork_wait $mib 1" \
    "$W run --allow process $out/bin/fork_wait.wasm $mib 1" | paste -sd' ')
  ratio=$(awk -v a="$w" -v b="$n" 'BEGIN {printf "%.2f", a/b}')
  row "first fork+_exit+waitpid, $mib MiB" "us" "$n" "$w" "$ratio" "(lower is better; no target)"
done
read -r n w < <(measure pipe "$out/native_pipe_throughput 1024" \
  "$W run --allow process $out/bin/pipe_throughput.wasm 1024" | paste -sd' ')
ratio=$(awk -v a="$w" -v b="$n" 'BEGIN {printf "%.2f", a/b}')
row "pipe throughput, 64 KiB writes" "MiB/s" "$n" "$w" "$ratio" "(higher is better; target >= 0.5)"
read -r n w < <(measure exec "$out/native_exec_wait $out/native_exec_wait 200" \
  "$W run --allow process --dir $out/bin::/bin $out/bin/exec_wait.wasm /bin/exec_wait.wasm 200" | paste -sd' ')
ratio=$(awk -v a="$w" -v b="$n" 'BEGIN {printf "%.2f", a/b}')
row "fork+exec+waitpid" "us" "$n" "$w" "$ratio" "(lower is better; no target)"
