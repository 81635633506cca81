#!/usr/bin/env bash
# Installs what building and testing warden needs on a fresh Debian machine:
# the WebAssembly Rust targets, and clang + lld + wasi-libc + binaryen for
# C guests. Idempotent: installs only what is missing.
set -euo pipefail

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
command -v wasm-ld >/dev/null || need_apt+=(lld)
[ -f /usr/include/wasm32-wasi/stdio.h ] || need_apt+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 \
  || need_apt+=(libclang-rt-14-dev-wasm32)
command -v wasm-opt >/dev/null || need_apt+=(binaryen)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

installed=$(rustup target list --installed)
for target in wasm32-wasip1 wasm32-wasip2; do
  if ! grep -qx "$target" <<<"$installed"; then
    echo "setup: adding rust target $target"
    rustup target add "$target"
  fi
done
