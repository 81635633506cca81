#!/usr/bin/env bash
# The full test suite: sets up what is missing, checks formatting and lints,
# then runs every test (guests are built from source by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
