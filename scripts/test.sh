#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, the Rust suites (unit tests and the
# tests/sql/*.slt behaviour files) and the real-client checks. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
cargo build -p aichemy
# The binary end to end, as a user types it.
bash tests/clients/cli_smoke.sh "$CARGO_TARGET_DIR/debug/aichemy"
# Real clients from PyPI against the same debug binary.
source scripts/python-env.sh
AICHEMY_BIN="$CARGO_TARGET_DIR/debug/aichemy" "$AICHEMY_VENV/bin/python" -m pytest -q tests/clients
