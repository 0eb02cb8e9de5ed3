"""Settings for the test suite: the project's settings, with test-friendly environment defaults.

Tests use a Redis database of their own (so a running demo worker never takes
a test's task), no HTTPS redirect (the test client speaks plain HTTP), and a
throwaway artifact folder. Each is only a default: the environment may override it.
"""

import hashlib
import os
import tempfile
from pathlib import Path

# Two checkouts testing at once (a clean clone beside a working copy) must not share a test database
# or a broker: both are named after the checkout's path.
_CHECKOUT = hashlib.sha256(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()

# A demo's var/.env (its DEBUG, its database) must not leak into the tests.
os.environ.setdefault("RECSYS_ENV_FILE", "")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-use-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DJANGO_SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("DJANGO_CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("CELERY_BROKER_URL", f"redis://localhost:6379/{1 + int(_CHECKOUT, 16) % 15}")
# The rate-limit cache shares the broker's private Redis database; its keys carry this checkout's prefix.
os.environ.setdefault("CACHE_URL", os.environ["CELERY_BROKER_URL"])
os.environ.setdefault("RECSYS_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
# Unit tests train on data built in code (tens of users); the tests of these limits set the real defaults.
os.environ.setdefault("RECSYS_MIN_SLICE_EVENTS", "10")
os.environ.setdefault("RECSYS_MIN_SLICE_USERS", "2")
os.environ.setdefault("RECSYS_MIN_SLICE_ITEMS", "2")
os.environ.setdefault("RECSYS_LOW_EVIDENCE_USERS", "5")
# Tests change rows and read them back at once: each request reads the versions (the fixture with two web
# processes sets the default instead).
os.environ.setdefault("RECSYS_SERVING_VERSION_MS", "0")
os.environ.setdefault("RECSYS_ARTIFACT_ROOT", tempfile.mkdtemp(prefix="recsys-test-artifacts-"))

from recsys_site.settings import *  # noqa: E402, F403

# Tests serve static files straight from the apps (no collectstatic step before a test run).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = tempfile.mkdtemp(prefix="recsys-test-static-")

CACHES["default"]["KEY_PREFIX"] = f"test-{_CHECKOUT[:8]}"  # noqa: F405
# Hashing passwords at full Argon2 cost would make every test that creates an account slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASES["default"]["TEST"] = {"NAME": f"test_recsys_{_CHECKOUT[:8]}"}  # noqa: F405
