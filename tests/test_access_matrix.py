"""Who may call each API operation: one row per operation, enumerated from the URL resolver.

A new endpoint without a row here fails ``test_every_api_operation_has_a_row``. Each row names the callers
that are let through; every other caller must be refused (401 for anonymous, 403 for the rest). "Let through"
means only "not 401/403": the request may still fail on its input, which other tests cover.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from catalog.models import EndUser, Interaction, Item
from dashboards.services import account_create, roles_sync
from tests.conftest import token_client
from tests.factories import START, scenario
from training.models import EmbeddingJob, MatrixJob, Study, TrainingRun

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
CALLERS = ("anonymous", "no_role", "viewer", "analyst", "integration", "admin", "ingest_token", "recommend_token")

# Groups of callers, named for what they stand for.
ANYONE = set(CALLERS)
LOGGED_IN = {"no_role", "viewer", "analyst", "integration", "admin"}  # with a session or a full token
READERS = {"viewer", "analyst", "admin"}
SCENARIO_READERS = READERS | {"integration"}
EDITORS = {"analyst", "admin"}
INGESTERS = {"analyst", "integration", "admin", "ingest_token"}
ADMINS = {"admin"}
RECOMMENDERS = SCENARIO_READERS | {"recommend_token"}

EXPECTED = {
    ("api-root", "get"): ANYONE,
    ("schema", "get"): LOGGED_IN,
    ("swagger-ui", "get"): LOGGED_IN,
    ("redoc", "get"): LOGGED_IN,
    ("token-list", "get"): LOGGED_IN,
    ("token-revoke", "delete"): LOGGED_IN,
    ("audit-record-list", "get"): ADMINS,
    ("item-list", "get"): READERS,
    ("item-list", "post"): INGESTERS,
    ("item-detail", "get"): READERS,
    ("item-detail", "put"): INGESTERS,
    ("item-detail", "patch"): INGESTERS,
    ("item-detail", "delete"): ADMINS,
    ("end-user-list", "get"): READERS,
    ("end-user-list", "post"): INGESTERS,
    ("end-user-detail", "get"): READERS,
    ("end-user-detail", "put"): INGESTERS,
    ("end-user-detail", "patch"): INGESTERS,
    ("end-user-detail", "delete"): ADMINS,
    ("interaction-list", "get"): READERS,
    ("interaction-list", "post"): INGESTERS,
    ("interaction-detail", "get"): READERS,
    ("algorithm-list", "get"): SCENARIO_READERS,
    ("scenario-list", "get"): SCENARIO_READERS,
    ("scenario-list", "post"): EDITORS,
    ("scenario-detail", "get"): SCENARIO_READERS,
    ("scenario-detail", "put"): EDITORS,
    ("scenario-detail", "patch"): EDITORS,
    ("scenario-detail", "delete"): ADMINS,
    ("scenario-slice", "get"): SCENARIO_READERS,
    ("scenario-slice-refresh", "post"): EDITORS,
    ("scenario-runs", "get"): READERS,
    ("scenario-runs", "post"): EDITORS,
    ("scenario-promotions", "get"): READERS,
    ("scenario-rollback", "post"): EDITORS,
    ("recommendations", "get"): RECOMMENDERS,
    ("recommendations", "post"): RECOMMENDERS,
    ("similar-items", "get"): RECOMMENDERS,
    ("predictions", "get"): RECOMMENDERS,
    ("run-detail", "get"): READERS,
    ("run-cancel", "post"): EDITORS,
    ("scenario-studies", "get"): READERS,
    ("scenario-studies", "post"): EDITORS,
    ("study-detail", "get"): READERS,
    ("study-cancel", "post"): EDITORS,
    ("study-promote", "post"): EDITORS,
    ("run-promote", "post"): EDITORS,
    ("item-embeddings-refresh", "post"): INGESTERS - {"ingest_token"},
    ("embedding-job-detail", "get"): READERS,
    ("group-matrix", "get"): SCENARIO_READERS,
    ("group-matrix-compute", "post"): EDITORS,
    ("matrix-job-detail", "get"): SCENARIO_READERS,
}


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def api_operations() -> dict[tuple[str, str], str]:
    """Every (URL name, method) under /api/v1/ that a view answers, with its route."""
    operations = {}
    for route, pattern in _patterns(get_resolver()):
        view = getattr(pattern.callback, "cls", None)
        if not route.startswith("api/v1/") or view is None:
            continue
        actions = getattr(pattern.callback, "actions", None)  # a viewset's routes map methods to actions
        methods = actions.keys() if actions else [method for method in METHODS if hasattr(view, method)]
        operations.update({(pattern.name, method): route for method in methods if method in METHODS})
    return operations


def test_every_api_operation_has_a_row():
    assert set(api_operations()) == set(EXPECTED)


@pytest.fixture
def objects(db) -> dict:
    """One of everything an operation can address."""
    movies = scenario()
    item = Item.objects.create(external_id="i1", title="One")
    user = EndUser.objects.create(external_id="u1")
    interaction = Interaction.objects.create(user=user, item=item, kind="click", value=1.0, occurred_at=START)
    run = TrainingRun.objects.create(scenario=movies, algorithm="popularity")
    job = EmbeddingJob.objects.create(encoder="test")
    study = Study.objects.create(scenario=movies, algorithms=["popularity"], max_trials=1)
    matrix_job = MatrixJob.objects.create(group=movies)
    return {
        "interaction": interaction.pk,
        "run": run.pk,
        "embedding": job.pk,
        "study": study.pk,
        "matrix": matrix_job.pk,
    }


def _kwargs(route: str, name: str, objects: dict) -> dict:
    """Arguments for the route's parameters, addressing the objects made by the fixture."""
    values = {
        "slug": "movies",
        "external_id": "u1" if name.startswith("end-user") else "i1",
        "token_key": "not-a-token",
        "pk": objects.get(name.split("-")[0]),
    }
    return {key: value for key, value in values.items() if f"<{key}>" in route or f":{key}>" in route}


@pytest.fixture
def callers(db) -> dict[str, APIClient]:
    """A client per caller: role accounts with full tokens; the scoped tokens belong to an admin, so only the
    scope can refuse them."""
    roles_sync()
    clients = {"anonymous": APIClient()}
    no_role = get_user_model().objects.create_user("nobody", password="nobody-pass-123")
    clients["no_role"] = token_client(no_role)
    for role in ("viewer", "analyst", "integration", "admin"):
        clients[role] = token_client(account_create(username=role, password=f"{role}-pass-123", role=role))
    admin = get_user_model().objects.get(username="admin")
    clients["ingest_token"] = token_client(admin, "ingest")
    clients["recommend_token"] = token_client(admin, "recommend")
    return clients


def test_each_caller_is_let_through_or_refused_as_its_row_says(objects, callers):
    routes = api_operations()
    wrong = {}
    # Deleting operations last, so that every other one still finds its object.
    for name, method in sorted(EXPECTED, key=lambda operation: (operation[1] == "delete", operation)):
        url = reverse(name, kwargs=_kwargs(routes[(name, method)], name, objects))
        outcomes = {caller: getattr(callers[caller], method)(url, {}, format="json").status_code for caller in CALLERS}
        refused = {caller for caller, code in outcomes.items() if code in (401, 403)}
        anonymous_ok = outcomes["anonymous"] == 401 or "anonymous" not in refused
        if ANYONE - refused != EXPECTED[(name, method)] or not anonymous_ok:
            wrong[f"{method.upper()} {url}"] = outcomes

    assert wrong == {}
