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
