#!/usr/bin/env bash
# Sets up, builds and starts the lakehouse on its embedded default: the SQL shell on
# ./aichemy-data. Extra arguments go to `aichemy sql` (for example -e "SHOW CATALOGS").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build -p aichemy
exec "$CARGO_TARGET_DIR/debug/aichemy" sql "$@"
