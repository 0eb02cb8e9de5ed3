#!/usr/bin/env bash
# The run command: sets up .venv, prepares the database with demo data, then runs the web server and a
# Celery worker until Ctrl-C. Falls back to SQLite and a filesystem broker when PostgreSQL or Redis
# cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
mkdir -p var

export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@localhost:5432/recsys}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://localhost:6379/0}
HOST=${RECSYS_DEMO_HOST:-127.0.0.1}
PORT=${RECSYS_DEMO_PORT:-8000}

# Decide which database and broker to use, and say so.
eval "$(.venv/bin/python scripts/pick_backends.py)"

.venv/bin/python manage.py demo_setup --url "http://$HOST:$PORT"

echo "==> starting the Celery worker (queues cpu, gpu; log: var/worker.log)"
.venv/bin/celery -A recsys_site worker -B -Q cpu,gpu -c "${RECSYS_WORKER_CONCURRENCY:-1}" -n "demo@%h" \
  --loglevel INFO >var/worker.log 2>&1 &
WORKER=$!
trap 'echo "==> stopping the worker"; kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

echo "==> starting the web server on http://$HOST:$PORT/ (Ctrl-C stops both)"
.venv/bin/python manage.py runserver "$HOST:$PORT" --noreload
