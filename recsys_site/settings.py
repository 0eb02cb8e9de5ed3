"""Settings for the recommendation operations platform.

Every value comes from an environment variable (documented in README.md);
the defaults suit local development against PostgreSQL and Redis on localhost.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from kombu import Queue

from recsys_site.env import (
    env_bool,
    env_file_load,
    env_int,
    env_list,
    env_networks,
    env_rate,
    env_required,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# The demo and development checkouts keep their settings in var/.env (never committed), so a fresh shell's
# management command finds them; variables set in the real environment win.
# RECSYS_ENV_FILE names another file, or none when empty (the tests read none).
_ENV_FILE = os.environ.get("RECSYS_ENV_FILE", str(BASE_DIR / "var" / ".env"))
if _ENV_FILE:
    env_file_load(Path(_ENV_FILE))

DEBUG = env_bool("DJANGO_DEBUG", False)
if DEBUG:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or "insecure-development-key-only-for-debug-mode"
else:
    SECRET_KEY = env_required(
        "DJANGO_SECRET_KEY", "when DJANGO_DEBUG is off (scripts/run_demo.sh writes one to var/.env)"
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "catalog",
    "scenarios",
    "training",
    "dashboards",
    "accounts",
]

MIDDLEWARE = [
    "recsys_site.metrics.RequestMetricsMiddleware",  # first, so it times everything below it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "recsys_site.middleware.ServiceUnavailableMiddleware",
    "recsys_site.middleware.NulQueryMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt before the view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "recsys_site.urls"
WSGI_APPLICATION = "recsys_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboards.views.role_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@localhost:5432/recsys"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        # A kept connection is checked before a request reuses it: one the server dropped is replaced.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that sends no query (recsys_site/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "recsys_site.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # Counts failed logins through the login page and the admin, and refuses a locked-out client.
    "accounts.backends.LoginLockoutBackend",
    # Django's model backend, with an account's permissions read in one query.
    "accounts.backends.RoleBackend",
]
# Argon2 for new and changed passwords; older PBKDF2 hashes still verify and are upgraded at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js from the plotly package itself, as static/plotly/plotly.min.js: no CDN, one version.
    "dashboards.staticfiles.PlotlyJsFinder",
]
# Hashed, compressed file names (needs `collectstatic`); off in debug, where files come from the apps.
STATIC_MANIFEST = env_bool("DJANGO_STATIC_MANIFEST", not DEBUG)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve files straight from the app folders in development (no collectstatic needed).
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# Trained model artifacts (tensors + JSON metadata) live here.
ARTIFACT_ROOT = Path(env_str("RECSYS_ARTIFACT_ROOT", str(BASE_DIR / "var" / "artifacts")))
# Artifacts shared by hosts through S3-compatible object storage (django-storages): workers publish each artifact
# under its path relative to ARTIFACT_ROOT, web processes fetch what they lack into ARTIFACT_ROOT (training.
# artifact_store). Credentials come from the usual AWS_* variables. Without a bucket, ARTIFACT_ROOT is the storage.
RECSYS_ARTIFACT_S3_BUCKET = env_str("RECSYS_ARTIFACT_S3_BUCKET", "")
if RECSYS_ARTIFACT_S3_BUCKET:
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": RECSYS_ARTIFACT_S3_BUCKET,
            "endpoint_url": env_str("RECSYS_ARTIFACT_S3_ENDPOINT", "") or None,
            "location": env_str("RECSYS_ARTIFACT_S3_PREFIX", "artifacts"),
            "file_overwrite": True,
        },
    }

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboards:scenario-list"
LOGOUT_REDIRECT_URL = "login"

# --- Security (production defaults; DEBUG relaxes nothing silently) ---------------
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Scripts only from this site or with the response's nonce; plotly.js injects <style> elements, hence the
# inline styles. Images may be data: URLs (plotly's and Swagger UI's icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- Cache (API throttles) ----------------------------------------------------------
# Shared by every web process through Redis; ``locmem://`` keeps it in each process (the demo without Redis).
CACHE_URL = env_str("CACHE_URL", "redis://localhost:6379/1")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if CACHE_URL.startswith("locmem://")
    else {"BACKEND": "recsys_site.cache.RedisCache", "LOCATION": CACHE_URL}
}

# --- Failed logins (django-axes) ------------------------------------------------------
# After this many failures for one username from one address, that pair is locked out for a while.
AXES_FAILURE_LIMIT = env_int("RECSYS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("RECSYS_LOGIN_LOCKOUT_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = 1 if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None

# --- REST API -----------------------------------------------------------------------
API_MAX_PAGE_SIZE = env_int("RECSYS_API_MAX_PAGE_SIZE", 1000, minimum=1)
INGEST_MAX_BATCH = env_int("RECSYS_INGEST_MAX_BATCH", 10_000, minimum=1)

# Requests per token (or per logged-in account) and per client address; "off" lifts a limit.
RECSYS_THROTTLE_RATES = {
    "token": env_rate("RECSYS_THROTTLE_TOKEN_RATE", "1200/min"),
    "address": env_rate("RECSYS_THROTTLE_ADDRESS_RATE", "2400/min"),
}
# The schema and its interactive documentation need a login unless this opens them.
RECSYS_API_DOCS_PUBLIC = env_bool("RECSYS_API_DOCS_PUBLIC", False)
# Lifetime of a token made by `manage.py create_token` when no --expires-days is given.
RECSYS_TOKEN_DEFAULT_DAYS = env_int("RECSYS_TOKEN_DEFAULT_DAYS", 90, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["recsys_site.permissions.RolePermissions"],
    "DEFAULT_THROTTLE_CLASSES": [
        "recsys_site.throttles.ClientRateThrottle",
        "recsys_site.throttles.AddressRateThrottle",
    ],
    # Client addresses come from REMOTE_ADDR unless a proxy in front sets X-Forwarded-For.
    "NUM_PROXIES": 1 if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else 0,
    "DEFAULT_PAGINATION_CLASS": "recsys_site.pagination.StandardPagination",
    "PAGE_SIZE": env_int("RECSYS_API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "recsys_site.api.exception_handler",
}

# Token secrets are stored as SHA-512 digests (django-rest-knox), with a scope and an expiry.
KNOX_TOKEN_MODEL = "accounts.ApiToken"
REST_KNOX = {"TOKEN_MODEL": "accounts.ApiToken", "AUTH_HEADER_PREFIX": "Token", "TOKEN_TTL": None}
# knox's own migrations would create a table for its model even though ApiToken replaces it.
MIGRATION_MODULES = {"knox": None}

SPECTACULAR_SETTINGS = {
    "TITLE": "Recommendation operations platform API",
    "DESCRIPTION": (
        "Ingest users, items and interaction events; define scenarios; train, serve and measure recommenders."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["recsys_site.permissions.ApiDocsAccess"],
    # Runs, embedding jobs and studies each have a status field; their choice sets are named here.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "training.models.RunStatus",
        "StudyStatusEnum": "training.models.StudyStatus",
    },
}

# --- API edge: body size, JSON parsing, error responses in the schema ------------------------
# A full ingestion batch (RECSYS_INGEST_MAX_BATCH events, 10,000 by default) of about 1.6 KB per event fits;
# a larger body is answered 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("RECSYS_API_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "recsys_site.parsers.StorableJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "recsys_site.schema.ErrorDocumentingAutoSchema"  # documents error responses

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://localhost:6379/0")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Training runs go to "cpu" or "gpu" workers (a scenario setting); light tasks to "cpu".
CELERY_TASK_QUEUES = (Queue("cpu"), Queue("gpu"))
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that sends a task gives up on an unreachable broker within about a second; the row it wrote is the
# outbox, and the sweeper (training.sweeper) sends the task again.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
# On a lost broker connection a running task keeps running: its row is the source of truth, so a redelivered
# copy of its message finds the row claimed and does nothing, and a Redis blip does not kill a long training run.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Soft time limits of the long tasks (the hard limits are a few minutes above them).
RECSYS_TRAINING_SOFT_TIME_LIMIT = env_int("RECSYS_TRAINING_SOFT_TIME_LIMIT", 6 * 3600, minimum=10)
RECSYS_EMBED_SOFT_TIME_LIMIT = env_int("RECSYS_EMBED_SOFT_TIME_LIMIT", 2 * 3600, minimum=10)
# Redis gives a reserved, unacknowledged message to another worker after this long: it must exceed every task's
# hard time limit, or a long acks_late task would be delivered again while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": max(RECSYS_TRAINING_SOFT_TIME_LIMIT, RECSYS_EMBED_SOFT_TIME_LIMIT) + 3600,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env_str("CELERY_FILESYSTEM_BROKER_DIR", str(BASE_DIR / "var" / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control, inside the checkout
        "store_processed": False,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Training ----------------------------------------------------------------------------------
# "auto" scenarios train on the gpu queue when GPU workers are deployed.
RECSYS_GPU_WORKERS = env_bool("RECSYS_GPU_WORKERS", False)
RECSYS_HEARTBEAT_SECONDS = env_int("RECSYS_HEARTBEAT_SECONDS", 10, minimum=1)
# A running run with no heartbeat for this long lost its worker and is marked failed by the reaper.
RECSYS_RUN_STALE_SECONDS = env_int("RECSYS_RUN_STALE_SECONDS", 120, minimum=5)
# A slice smaller than this is refused when a run is queued: its metrics would rest on a handful of users.
RECSYS_MIN_SLICE_EVENTS = env_int("RECSYS_MIN_SLICE_EVENTS", 100, minimum=1)
RECSYS_MIN_SLICE_USERS = env_int("RECSYS_MIN_SLICE_USERS", 10, minimum=2)  # users with at least 2 events
RECSYS_MIN_SLICE_ITEMS = env_int("RECSYS_MIN_SLICE_ITEMS", 10, minimum=2)
# A run evaluated on fewer test users is marked "low evidence", and promoting it needs an explicit force.
RECSYS_LOW_EVIDENCE_USERS = env_int("RECSYS_LOW_EVIDENCE_USERS", 100, minimum=1)
# Latest events a recommendation request reads for models without a max_length of their own (training.live).
RECSYS_LIVE_HISTORY_LENGTH = env_int("RECSYS_LIVE_HISTORY_LENGTH", 500, minimum=1)
# Retrain schedules are edited in the browser and stored in the database (django-celery-beat); the same beat
# process runs the sweeper (training.sweeper) every RECSYS_SWEEP_SECONDS, with no worker needed.
CELERY_BEAT_SCHEDULER = "training.beat:SweepingScheduler"
# Artifact retention (training.retention): the last RECSYS_KEEP_RUNS succeeded runs of each scenario keep their
# artifacts, besides live and once-live runs and parents of unfinished runs; applied every RECSYS_RETENTION_SECONDS.
RECSYS_KEEP_RUNS = env_int("RECSYS_KEEP_RUNS", 5, minimum=0)
RECSYS_RETENTION_SECONDS = env_int("RECSYS_RETENTION_SECONDS", 3600, minimum=60)
CELERY_BEAT_SCHEDULE = {
    "artifacts-retain": {
        "task": "training.artifacts_retain",
        "schedule": float(RECSYS_RETENTION_SECONDS),
        "options": {"queue": "cpu"},
    }
}
RECSYS_SWEEP_SECONDS = env_int("RECSYS_SWEEP_SECONDS", 15, minimum=1)
# A queued run or embedding job whose task message the broker no longer holds (and does not hand to a worker)
# for this long is sent again, up to RECSYS_DISPATCH_MAX_ATTEMPTS messages; then it fails with the reason.
RECSYS_DISPATCH_LOST_SECONDS = env_int("RECSYS_DISPATCH_LOST_SECONDS", 60, minimum=1)
RECSYS_DISPATCH_MAX_ATTEMPTS = env_int("RECSYS_DISPATCH_MAX_ATTEMPTS", 3, minimum=1)
# A run queued for a queue that no live worker has consumed for this long fails (no GPU worker for "gpu").
RECSYS_QUEUE_NO_CONSUMER_SECONDS = env_int("RECSYS_QUEUE_NO_CONSUMER_SECONDS", 600, minimum=1)
# Progress and heartbeat writes retry this many times (0.5 s, 1 s, 2 s, … apart) across a database blip.
RECSYS_DB_RETRY_ATTEMPTS = env_int("RECSYS_DB_RETRY_ATTEMPTS", 8, minimum=1)
# 503 answers (database or broker unreachable) ask the client to come back after this many seconds.
RECSYS_RETRY_AFTER_SECONDS = env_int("RECSYS_RETRY_AFTER_SECONDS", 5, minimum=1)
# Memory (MiB) a training run may use at its peak; 0: what the worker's system or container has available. A run
# whose model would need more fails at once, saying so (training.memory).
RECSYS_TRAINING_MEMORY_MB = env_int("RECSYS_TRAINING_MEMORY_MB", 0, minimum=0)
# Loaded models kept per web process.
RECSYS_MODEL_CACHE_SIZE = env_int("RECSYS_MODEL_CACHE_SIZE", 8, minimum=1)
# Threads torch may use in each web process (scale with processes: gunicorn -w).
RECSYS_WEB_TORCH_THREADS = env_int("RECSYS_WEB_TORCH_THREADS", 1, minimum=1)
# A web process reuses the serving and catalogue versions it read from Redis for this many milliseconds (0: reads
# them on every request), so a change is served within this long of its commit, plus the next request.
RECSYS_SERVING_VERSION_MS = env_int("RECSYS_SERVING_VERSION_MS", 250, minimum=0)
# A model served from memory is checked against its checksum again at least this often (seconds).
RECSYS_ARTIFACT_VERIFY_SECONDS = env_int("RECSYS_ARTIFACT_VERIFY_SECONDS", 300, minimum=1)

# GET /metrics answers a scraper sending "Authorization: Bearer <RECSYS_METRICS_TOKEN>" (when set) or one whose
# address is in RECSYS_METRICS_ALLOWED_IPS (addresses or networks, comma-separated; the loopback by default).
# Behind a proxy the address is the proxy's: use the token there.
RECSYS_METRICS_TOKEN = env_str("RECSYS_METRICS_TOKEN", "")
RECSYS_METRICS_ALLOWED_NETWORKS = env_networks("RECSYS_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
