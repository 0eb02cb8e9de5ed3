# Sourced by the setup scripts: the interpreter that creates a peer library's virtualenv, and the steps they share.
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# Creates the virtualenv $1 unless it is there already.
peer_venv_create() {
  if [ ! -x "$1/bin/python" ]; then
    echo "==> creating virtualenv $1 with $($PYTHON --version)" >&2
    "$PYTHON" -m venv "$1"
  fi
}

# True when the virtualenv $1 has never been installed, or when a file among the rest is newer than its install.
peer_venv_stale() {
  local stamp=$1/.requirements-installed
  shift
  [ -f "$stamp" ] || return 0
  local file
  for file in "$@"; do
    [ "$file" -nt "$stamp" ] && return 0
  done
  return 1
}

# Marks the virtualenv $1 installed as of now.
peer_venv_installed() {
  touch "$1/.requirements-installed"
}
