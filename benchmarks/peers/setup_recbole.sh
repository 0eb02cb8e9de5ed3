#!/usr/bin/env bash
# Creates benchmarks/peers/.venv-recbole with RecBole 1.2.1 (idempotent: a no-op once installed).
# torch goes in first, on its own, at the project's pin (the CPU build); then the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
venv=.venv-recbole
stamp=$venv/.requirements-installed
torch_pin=$(grep -E '^torch==' ../../requirements.txt)

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv $venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ requirements-recbole.txt -nt "$stamp" ] || [ ../../requirements.txt -nt "$stamp" ]; then
  echo "==> installing $torch_pin, then requirements-recbole.txt" >&2
  "$venv/bin/python" -m pip install -q "$torch_pin"
  "$venv/bin/python" -m pip install -q -r requirements-recbole.txt
  "$venv/bin/python" -W ignore -c "import recbole.quick_start"  # fails here, not mid-benchmark, if something is missing
  touch "$stamp"
fi
