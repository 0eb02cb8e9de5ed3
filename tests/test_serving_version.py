"""Web processes keep the scenario and live run they serve until the serving version in Redis changes."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from accounts.services import api_token_create
from recsys_site import serving_version
from recsys_site.serving_version import catalog_version_get, serving_version_bump, serving_version_get
from scenarios.models import Scenario
from tests.conftest import ROOT, free_port, listening, wait_until
from tests.factories import clustered_catalog, scenario, trained
from training.services import training_run_promote

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_processes() -> Iterator[list[str]]:
    """Two separate gunicorn servers (one process each) on the test database and the test Redis."""
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or 'localhost'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "RECSYS_SERVING_VERSION_MS": "250",  # the production default, not the tests' 0
    }
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "recsys_site.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_until(lambda port=port: listening(port), timeout=60)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)


def test_a_promotion_through_one_process_is_served_by_the_other_within_a_second(web_processes, admin_user):
    clustered_catalog()
    scenario(algorithm="ease")
    movies = Scenario.objects.get(slug="movies")
    first, second = trained(movies, "ease"), trained(movies, "popularity")
    training_run_promote(run=first)
    _, secret = api_token_create(user=admin_user, scope="full")
    headers = {"Authorization": f"Token {secret}"}
    one, other = web_processes

    def call(url: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers={**headers, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:  # raises on a 4xx or 5xx
            return json.loads(response.read())

    def served_run(base: str) -> int:
        return call(f"{base}/api/v1/scenarios/movies/recommendations/?user=u1")["run_id"]

    # Each process's first request loads the model: on a loaded machine that can take seconds (the time that counts
    # is measured from the promotion below).
    assert served_run(one) == first.pk and served_run(other) == first.pk

    # The rows alone do not reach a process keeping the scenario: it serves the kept run until the version changes.
    Scenario.objects.filter(slug="movies").update(live_run=second)
    assert served_run(other) == first.pk
    Scenario.objects.filter(slug="movies").update(live_run=first)

    call(f"{one}/api/v1/runs/{second.pk}/promote/", {})
    promoted_at = time.monotonic()
    wait_until(lambda: served_run(other) == second.pk, timeout=1.0, interval=0.05)
    assert time.monotonic() - promoted_at < 1.0


def test_a_process_reuses_the_versions_it_read_until_they_age_or_it_changes_one(settings):
    settings.RECSYS_SERVING_VERSION_MS = 60_000
    serving_version._forget()
    cache.set(serving_version.KEY, "first", timeout=None)
    cache.set(serving_version.CATALOG_KEY, "catalogue", timeout=None)
    assert serving_version_get() == "first" and catalog_version_get() == "catalogue"

    cache.set(serving_version.KEY, "changed elsewhere", timeout=None)  # another process's bump
    assert serving_version_get() == "first"  # kept: read within the last minute

    with transaction.atomic():
        serving_version_bump()  # this process's own change is seen at its next request
    assert serving_version_get() not in {"first", "changed elsewhere"}

    settings.RECSYS_SERVING_VERSION_MS = 0
    cache.set(serving_version.KEY, "read every time", timeout=None)
    assert serving_version_get() == "read every time"


def test_versions_redis_lost_are_set_afresh_and_kept_again():
    serving_version._forget()
    held = serving_version_get()
    for key in (serving_version.KEY, serving_version.CATALOG_KEY, serving_version.ACCESS_KEY):
        cache.delete(key)  # as after a restart of Redis without persistence, or an eviction
    serving_version._forget()

    after = [serving_version_get(), catalog_version_get(), serving_version.access_version_get()]
    serving_version._forget()

    assert None not in after and after[0] != held  # every process drops what it kept under the old value
    assert [serving_version_get(), catalog_version_get(), serving_version.access_version_get()] == after


def test_a_token_revoked_through_one_process_is_refused_by_the_other_within_a_second(web_processes, admin_user):
    token, secret = api_token_create(user=admin_user, scope="full")
    one, other = web_processes

    def status(base: str, method: str = "GET", path: str = "/api/v1/items/") -> int:
        request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"Token {secret}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    serving_version._bump(serving_version.ACCESS_KEY)  # known, as once any token or account has changed
    assert status(other) == 200 and status(other) == 200  # read, then kept
    assert status(one, "DELETE", f"/api/v1/tokens/{token.token_key}/") == 204
    revoked_at = time.monotonic()
    wait_until(lambda: status(other) == 401, timeout=1.0, interval=0.05)
    assert time.monotonic() - revoked_at < 1.0
