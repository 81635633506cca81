#!/usr/bin/env bash
# Attestation benchmark (issue 13), everything measured in one run on this
# machine with the same hello component (examples/http/hello) and the
# software evidence backend:
#   start-up of `warden serve --tls attested` (evidence + certificate) vs
#     the same server with a certificate from files, to "Serving";
#   the evidence + certificate cost as the server logs it;
#   `warden verify` end to end against the local server (hyperfine);
#   requests/s of the fresh-evidence endpoint, next to the health endpoint
#     on the same server (wrk over TLS 1.3, one nonce);
#   handshakes/s with the attested certificate vs a plain one (wrk with
#     `Connection: close`: one TLS handshake per request; target: the same).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
RUNS=${RUNS:-10}
bash scripts/setup.sh >/dev/null
# shellcheck source=bench/lib/servers.sh
. bench/lib/servers.sh
need wrk wrk; need hyperfine hyperfine; need openssl openssl
T=${CARGO_TARGET_DIR:-$PWD/target}
out=$T/bench-attest
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q -p warden
W=$T/release/warden
cargo build --release -q --target wasm32-wasip2 --manifest-path examples/http/Cargo.toml --target-dir "$T/bench-examples"
HELLO=$T/bench-examples/wasm32-wasip2/release/hello.wasm
export WARDEN_CACHE_DIR=$out/cache WARDEN_STORE=$out/store.redb WARDEN_KEY_FILE=$out/store.key
export WARDEN_ATTEST_KEY=$out/attest.key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null
printf '[[app]]\nname = "hello"\nroute = "/..."\ncomponent = "%s"\n' "$HELLO" > "$out/Warden.toml"
ATTESTED=(--tls attested --evidence software)
FILES=(--tls-cert "$out/cert.pem" --tls-key "$out/key.pem")

# serve NAME ARGS...: `warden serve` of the manifest with ARGS ($url
# without its trailing slash).
serve() {
  local name=$1; shift
  start "$name" "$W" serve "$out/Warden.toml" --addr 127.0.0.1:0 --no-watch "$@"
  url=${url%/}
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Start-up, alternating so that noise hits both alike (cache warmed first).
serve warm "${FILES[@]}"; stop
: > "$out/files.ms"; : > "$out/attested.ms"; : > "$out/cost.ms"
for _ in $(seq "$RUNS"); do
  serve files "${FILES[@]}"; echo "$ready_ms" >> "$out/files.ms"; stop
  serve attested "${ATTESTED[@]}"; echo "$ready_ms" >> "$out/attested.ms"
  grep -o 'certificate in [0-9.]* ms' "$out/attested.log" | awk '{print $3}' >> "$out/cost.ms"
  stop
done
files=$(median < "$out/files.ms"); attested=$(median < "$out/attested.ms"); cost=$(median < "$out/cost.ms")
printf '%-58s %10s\n' "start-up to listening (median of $RUNS)" "ms"
printf '%-58s %10s\n' "warden serve, certificate from files" "$files"
printf '%-58s %10s %8s\n' "warden serve --tls attested (software evidence)" "$attested" \
  "$(awk -v a="$attested" -v b="$files" 'BEGIN {printf "%.2fx", a/b}')"
printf '%-58s %10s\n' "  of which evidence + certificate (server log)" "$cost"

# warden verify end to end.
serve attested "${ATTESTED[@]}"
hyperfine -N -w 3 -r 30 --export-json "$out/verify.json" \
  "$W verify $url --allow-software --runtime self" >/dev/null
awk '/"mean"/ {printf "%-58s %10.1f\n", "warden verify, end to end (ms, mean of 30)", $2*1000; exit}' "$out/verify.json"

# Requests/s: the fresh-evidence endpoint vs the health endpoint.
rps() { # url connections [header]
  local extra=()
  [ $# -ge 3 ] && extra=(-H "$3")
  wrk -t2 -c"$2" -d2s "${extra[@]}" "$1" >/dev/null
  wrk -t2 -c"$2" -d"$DURATION" "${extra[@]}" "$1" | awk '/Requests\/sec/ {printf "%.0f", $2} /Non-2xx/ {bad=1} END {if (bad) printf " (non-2xx!)"}'
}
nonce=00112233445566778899aabbccddeeff
fresh=$(rps "$url/.well-known/warden/attestation?nonce=$nonce" 8)
health=$(rps "$url/.well-known/warden/health" 8)
printf '%-58s %10s\n' "fresh evidence, req/s (8 conns, kept alive)" "$fresh"
printf '%-58s %10s %8s\n' "health endpoint, same server, req/s" "$health" \
  "$(awk -v a="$fresh" -v b="$health" 'BEGIN {printf "%.2fx", a/b}')"
# Handshakes: a new TLS connection for every request to the app.
hs_attested=$(rps "$url/" 8 "Connection: close")
stop
serve files "${FILES[@]}"
hs_files=$(rps "$url/" 8 "Connection: close")
stop
printf '%-58s %10s\n' "handshakes/s, certificate from files (8 conns)" "$hs_files"
printf '%-58s %10s %8s\n' "handshakes/s, attested certificate" "$hs_attested" \
  "$(awk -v a="$hs_attested" -v b="$hs_files" 'BEGIN {printf "%.2fx", a/b}')"
echo "target: attested handshakes/s the same as with a plain certificate (1.00x)"
