#!/usr/bin/env bash
# Creates benchmarks/peers/.venv-recbole with RecBole 1.2.1 (idempotent: a no-op once installed).
# torch goes in first, on its own, at the project's pin (the CPU build); then the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")"
source ./peer_venv.sh

venv=.venv-recbole
torch_pin=$(grep -E '^torch==' ../../requirements.txt)

peer_venv_create "$venv"
if peer_venv_stale "$venv" requirements-recbole.txt ../../requirements.txt; then
  echo "==> installing $torch_pin, then requirements-recbole.txt" >&2
  "$venv/bin/python" -m pip install -q "$torch_pin"
  "$venv/bin/python" -m pip install -q -r requirements-recbole.txt
  "$venv/bin/python" -W ignore -c "import recbole.quick_start"  # fails here, not mid-benchmark, if something is missing
  peer_venv_installed "$venv"
fi
