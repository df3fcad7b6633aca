#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, the Rust suites (unit tests and the
# tests/sql/*.slt behaviour files) and the real-client checks. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The binary end to end, as a user types it.
bash tests/clients/cli_smoke.sh "$CARGO_TARGET_DIR/debug/aichemy"
