#!/usr/bin/env bash
# Creates benchmarks/peers/.venv-surprise with Surprise 1.1.5 (idempotent: a no-op once installed).
set -euo pipefail
cd "$(dirname "$0")"
source ./peer_venv.sh

venv=.venv-surprise

peer_venv_create "$venv"
if peer_venv_stale "$venv" requirements-surprise.txt; then
  echo "==> installing requirements-surprise.txt" >&2
  "$venv/bin/python" -m pip install -q -r requirements-surprise.txt
  "$venv/bin/python" -c "import surprise"  # fails here, not mid-benchmark, if something is missing
  peer_venv_installed "$venv"
fi
