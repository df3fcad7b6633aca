#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, the Rust suites (unit tests and the
# tests/sql/*.slt behaviour files) and the real-client checks. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-run
cargo build -p aichemy
# The shared target folder keeps what older trees built; drop what this one does not use.
python3 scripts/prune-target.py
cargo test --workspace
# The binary end to end, as a user types it.
bash tests/clients/cli_smoke.sh "$CARGO_TARGET_DIR/debug/aichemy"
# The federation tests start PostgreSQL servers of their own from Debian's packages; the
# monitoring tests run Debian's Prometheus and promtool; the console's tests drive
# Debian's Chromium headless through its chromedriver.
need=()
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v promtool >/dev/null || need+=(prometheus)
command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Real clients from PyPI against the same debug binary.
source scripts/python-env.sh
# The npm trino-client (tests/clients/node) that the Node.js client tests drive.
source scripts/node-env.sh
AICHEMY_BIN="$CARGO_TARGET_DIR/debug/aichemy" "$AICHEMY_VENV/bin/python" -m pytest -q tests/clients
