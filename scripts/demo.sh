#!/usr/bin/env bash
# Sets up, builds warden, compiles the example C program to WebAssembly and
# runs it under the policy in examples/notes/Warden.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -p warden
mkdir -p target/examples
clang --target=wasm32-wasi -O2 -o target/examples/notes.wasm examples/notes/notes.c
out=$(mktemp -d)
echo "== warden run --config examples/notes/Warden.toml --dir $out::/out target/examples/notes.wasm"
set +e
target/debug/warden run --config examples/notes/Warden.toml --dir "$out::/out" \
  target/examples/notes.wasm
code=$?
set -e
echo "== guest exit code: $code"
echo "== what the guest wrote on the host ($out/summary.txt):"
cat "$out/summary.txt"
rm -rf "$out"

# The app host: the example apps of examples/http under `warden serve`,
# their state in a sealed store of their own.
command -v curl >/dev/null || {
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq curl >/dev/null
}
cargo build -q --release --target wasm32-wasip2 --manifest-path examples/http/Cargo.toml \
  --target-dir target/examples/http
state=$(mktemp -d)
log=$state/serve.log
echo
echo "== warden serve examples/http/Warden.toml --addr 127.0.0.1:0"
WARDEN_STORE=$state/store.redb WARDEN_KEY_FILE=$state/store.key \
  target/debug/warden serve examples/http/Warden.toml --addr 127.0.0.1:0 2>"$log" &
server=$!
url=""
for _ in $(seq 300); do
  url=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; exit 1; }
show() { echo "\$ curl $*"; curl -s "$@"; }
show "$url/hello"
show "$url/count/visits"
show "$url/count/visits"
show -X PUT --data "buy milk" "$url/notes/todo"
show "$url/notes/todo"; echo
show "$url/log/fail"
show "$url/.well-known/warden/health"
kill -INT "$server"
wait "$server"
echo "== the server's log:"
cat "$log"
echo "== the notes are in the sealed store, not on disk in the clear:"
target/debug/warden kv --store "$state/store.redb" --key-file "$state/store.key" list
if grep -q "buy milk" "$state/store.redb"; then echo "plaintext found!"; exit 1; else echo "(no plaintext of the note in $state/store.redb)"; fi
rm -rf "$state"
