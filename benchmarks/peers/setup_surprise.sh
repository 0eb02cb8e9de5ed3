#!/usr/bin/env bash
# Creates benchmarks/peers/.venv-surprise with Surprise 1.1.5 (idempotent: a no-op once installed).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
venv=.venv-surprise
stamp=$venv/.requirements-installed

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv $venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ requirements-surprise.txt -nt "$stamp" ]; then
  echo "==> installing requirements-surprise.txt" >&2
  "$venv/bin/python" -m pip install -q -r requirements-surprise.txt
  "$venv/bin/python" -c "import surprise"  # fails here, not mid-benchmark, if something is missing
  touch "$stamp"
fi
