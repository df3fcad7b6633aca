#!/usr/bin/env bash
# Installs Node.js from Debian when missing and (once per lock) the npm trino-client of
# tests/clients/node/package-lock.json outside the clone; safe to run again. Sourced by
# scripts/test.sh; exports AICHEMY_NODE_MODULES (its node_modules is what NODE_PATH names).
set -euo pipefail
export AICHEMY_NODE_MODULES="${AICHEMY_NODE_MODULES:-$HOME/.cache/aichemy/node}"
need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# `npm ci` again only when package.json or the lock changed: the stamp holds their hash.
node_hash="$(cat tests/clients/node/package.json tests/clients/node/package-lock.json | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$AICHEMY_NODE_MODULES/.installed" 2>/dev/null)" != "$node_hash" ]; then
  mkdir -p "$AICHEMY_NODE_MODULES"
  rm -f "$AICHEMY_NODE_MODULES/.installed"
  cp tests/clients/node/package.json tests/clients/node/package-lock.json "$AICHEMY_NODE_MODULES/"
  (cd "$AICHEMY_NODE_MODULES" && npm ci --loglevel=error --no-audit --no-fund)
  echo "$node_hash" >"$AICHEMY_NODE_MODULES/.installed"
fi
