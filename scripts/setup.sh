#!/usr/bin/env bash
# Installs what building and testing warden needs on a fresh Debian machine:
# the WebAssembly Rust targets, clang + lld + wasi-libc + binaryen for C
# guests, etcd (server, etcdctl, protoc) for the sealed store's etcd
# backend, and the threads sysroot of `warden cc -pthread` (two pinned
# archives, verified by SHA-256, into warden's cache; `warden cc` unpacks
# them). Idempotent: installs and downloads only what is missing.
set -euo pipefail

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
command -v wasm-ld >/dev/null || need_apt+=(lld)
[ -f /usr/include/wasm32-wasi/stdio.h ] || need_apt+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 \
  || need_apt+=(libclang-rt-14-dev-wasm32)
command -v wasm-opt >/dev/null || need_apt+=(binaryen)
# The threads sysroot: downloaded with curl, unpacked with tar (xz) and
# dpkg-deb.
command -v curl >/dev/null || need_apt+=(curl)
command -v xz >/dev/null || need_apt+=(xz-utils)
# The sealed store's etcd backend: its tests start real etcd clusters
# (etcd), restore snapshots (etcdctl), and the etcd-client crate's build
# script compiles etcd's protobuf definitions (protoc).
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v etcdctl >/dev/null || need_apt+=(etcd-client)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
# The etcd TLS test makes its certificates with the openssl command.
command -v openssl >/dev/null || need_apt+=(openssl)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

installed=$(rustup target list --installed)
for target in wasm32-wasip1 wasm32-wasip1-threads wasm32-wasip2; do
  if ! grep -qx "$target" <<<"$installed"; then
    echo "setup: adding rust target $target"
    rustup target add "$target"
  fi
done

# The threads sysroot's archives (the pins are those of
# crates/warden/src/cc/threads.rs; docs/cc.md says why these two). Only
# downloaded and checked here: nothing in them is run, and no apt source is
# added.
cache="${WARDEN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden}"
downloads="$cache/downloads"
fetch_pinned() {
  local url=$1 file=$2 sha256=$3
  local path="$downloads/$file"
  if [ -f "$path" ] && echo "$sha256  $path" | sha256sum --check --status; then
    return
  fi
  echo "setup: downloading $url"
  mkdir -p "$downloads"
  curl --fail --silent --show-error --location --retry 2 --output "$path.part" "$url"
  if ! echo "$sha256  $path.part" | sha256sum --check --status; then
    rm -f "$path.part"
    echo "setup: $url does not have the pinned SHA-256 $sha256" >&2
    exit 1
  fi
  mv "$path.part" "$path"
}
fetch_pinned \
  "https://deb.debian.org/debian/pool/main/w/wasi-libc/wasi-libc_0.0~git20241209.574b88d-2_all.deb" \
  "wasi-libc_0.0~git20241209.574b88d-2_all.deb" \
  b7716260051d289248b7667f81fa2792c125d888ff51da3fa09c6272cc0bd11d
fetch_pinned \
  "https://static.rust-lang.org/dist/2026-04-16/rust-std-1.95.0-wasm32-wasip1-threads.tar.xz" \
  "rust-std-1.95.0-wasm32-wasip1-threads.tar.xz" \
  9079935a00a3c3aaf284957bbe82972983ce2708019687cec1f4988c30c1e0f3
