#!/usr/bin/env bash
# Creates (once) the virtualenv of the client tests and installs tests/clients/requirements.txt
# into it; safe to run again. Sourced by scripts/test.sh; exports AICHEMY_VENV.
set -euo pipefail
export AICHEMY_VENV="${AICHEMY_VENV:-$HOME/.cache/aichemy/venv}"
if [ ! -x "$AICHEMY_VENV/bin/python" ]; then
  if ! python3 -m venv "$AICHEMY_VENV" 2>/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv
    rm -rf "$AICHEMY_VENV"
    python3 -m venv "$AICHEMY_VENV"
  fi
fi
"$AICHEMY_VENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
