#!/usr/bin/env bash
# The test command: sets up .venv, makes sure PostgreSQL and Redis run, then lint, types, migrations check and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@localhost:5432/recsys}
mkdir -p var

echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
# pyproject.toml says what it checks; its Django plugin reads recsys_site.mypy_settings (no secret key needed).
.venv/bin/mypy
echo "==> migrations are up to date"
# Against the server's maintenance database: the check needs no project database to exist.
DATABASE_URL="${DATABASE_URL%/*}/postgres" DJANGO_SETTINGS_MODULE=tests.settings \
  .venv/bin/python manage.py makemigrations --check --dry-run
echo "==> pytest"
# pytest exits 5 when it collected no test: that is a failure here, like any other non-zero code.
exec .venv/bin/pytest "$@"
