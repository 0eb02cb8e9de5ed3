#!/usr/bin/env bash
# The run command: sets up .venv, prepares the database with demo data, then runs the web server and a
# Celery worker until Ctrl-C, training the demo's models in the background. Falls back to SQLite and a
# filesystem broker when PostgreSQL or Redis cannot be reached.
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

# Keep these settings in var/.env (ignored by git), which settings.py reads: then `manage.py create_account`,
# `create_token`, `train` or `runs` work from any fresh shell in this checkout. The secret key is made once.
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  DJANGO_SECRET_KEY=$(sed -n 's/^DJANGO_SECRET_KEY=//p' var/.env 2>/dev/null || true)
  if [ -z "$DJANGO_SECRET_KEY" ]; then
    DJANGO_SECRET_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')
  fi
  export DJANGO_SECRET_KEY
fi
if [ "$CELERY_BROKER_URL" = "filesystem://" ]; then
  export CACHE_URL=${CACHE_URL:-locmem://}
else
  export CACHE_URL=${CACHE_URL:-${CELERY_BROKER_URL%/*}/1}
fi
(
  umask 077
  {
    echo "# Written by scripts/run_demo.sh; read by recsys_site/settings.py. Not for production."
    for name in DJANGO_DEBUG DJANGO_SECRET_KEY DATABASE_URL CELERY_BROKER_URL CACHE_URL; do
      echo "$name=${!name}"
    done
  } >var/.env
)
echo "==> settings written to var/.env (management commands read them from any shell)"

.venv/bin/python manage.py demo_setup --url "http://$HOST:$PORT"

echo "==> starting the Celery worker (queues cpu, gpu; log: var/worker.log)"
.venv/bin/celery -A recsys_site worker -B -Q cpu,gpu -c "${RECSYS_WORKER_CONCURRENCY:-1}" -n "demo@%h" \
  --loglevel INFO >var/worker.log 2>&1 &
WORKER=$!
# The demo's runs train in the background while the pages already work: each scenario's baseline first (live
# within seconds), then a small SASRec; the best of each scenario is promoted as runs finish.
echo "==> training the demo models on the worker (log: var/demo-train.log; progress on the scenario pages)"
PYTHONUNBUFFERED=1 .venv/bin/python manage.py demo_train --url "http://$HOST:$PORT" > >(tee var/demo-train.log) 2>&1 &
TRAINER=$!
trap 'echo "==> stopping the worker"; kill $TRAINER $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

echo "==> starting the web server on http://$HOST:$PORT/ (Ctrl-C stops both)"
.venv/bin/python manage.py runserver "$HOST:$PORT" --noreload
