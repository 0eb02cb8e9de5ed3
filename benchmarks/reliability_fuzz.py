"""The Django side of ``benchmarks.reliability``: fixtures, schemathesis fuzzing and the bad-input table.

Imported after ``django.setup()``.
"""

import contextlib
import json
from pathlib import Path

import hypothesis
import schemathesis
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck
from schemathesis import GenerationMode

from accounts.services import api_token_create
from benchmarks.reliability_inputs import BadInput
from dashboards.services import account_create
from recsys_site.wsgi import application
from scenarios.models import Scenario
from scenarios.services import scenario_create
from training.services import training_run_create, training_run_execute, training_run_promote

SCHEMA = "/api/v1/schema/?format=json"
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def fixtures_build(data: Path) -> dict[str, str]:
    """MovieLens 100K, one trained and promoted run, a group with a member; tokens of an admin and a viewer."""
    call_command("migrate", verbosity=0)
    call_command("import_movielens", str(data), no_progress=True, verbosity=0)
    movies = scenario_create(data={"slug": "movies", "name": "Movies", "algorithm": "popularity"})
    run = training_run_create(scenario=movies, algorithm="popularity", params={})
    training_run_execute(run_id=run.pk, device="cpu")
    run.refresh_from_db()
    training_run_promote(run=run)
    group = scenario_create(data={"slug": "group", "name": "Group", "algorithm": "popularity"})
    Scenario.objects.create(slug="member", name="Member", algorithm="popularity", parent=group)
    tokens = {}
    for role in ("admin", "viewer"):
        user = account_create(username=f"bench-{role}", password="bench-password-1234", role=role)
        tokens[role] = api_token_create(user=user, scope="full")[1]
    return tokens


def fuzz(tokens: dict[str, str], *, examples: int) -> dict[str, int]:
    """Send up to ``examples`` generated requests per operation, mode and token; count them and the 5xx."""
    counts = {"fuzz_cases": 0, "fuzz_2xx": 0, "fuzz_4xx": 0, "fuzz_4xx_not_json": 0, "fuzz_5xx": 0}
    failures: list[str] = []
    for role, secret in tokens.items():
        headers = {"Authorization": f"Token {secret}"}
        schema = schemathesis.openapi.from_wsgi(SCHEMA, application, headers=headers)
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in MODES:
                _fuzz_operation(operation, mode, headers, examples, counts, failures)
        print(f"fuzzed as {role}: {counts['fuzz_cases']} requests so far, {counts['fuzz_5xx']} answered 5xx")
    for failure in failures[:20]:
        print("failure:", failure)
    return counts


def _fuzz_operation(operation, mode, headers: dict, examples: int, counts: dict, failures: list) -> None:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def send(case) -> None:
        response = case.call(headers=headers)
        counts["fuzz_cases"] += 1
        kind = f"fuzz_{min(response.status_code // 100, 5)}xx"
        counts[kind] = counts.get(kind, 0) + 1
        if 400 <= response.status_code < 500 and not _is_json_error(response):
            counts["fuzz_4xx_not_json"] += 1
            failures.append(f"not JSON: {response.status_code} {case.method} {case.formatted_path}")
        if response.status_code >= 500:
            failures.append(
                f"{response.status_code} {case.method} {case.formatted_path} {case.query} {case.body!r:.200}"
            )

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        send()


def _is_json_error(response) -> bool:
    """The API's error format: a JSON object with a ``detail`` sentence."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("detail"), str)


def bad_inputs_send(inputs: tuple[BadInput, ...], *, token: str) -> dict[str, int]:
    """Send each known bad input with the admin token; count them and the 5xx."""
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {token}")
    answered_5xx = 0
    for bad in inputs:
        body = bad.body() if callable(bad.body) else bad.body
        if bad.content_type == "application/json" and not isinstance(body, str | bytes):
            body = json.dumps(body)
        response = client.generic(bad.method, bad.path, body or "", content_type=bad.content_type)
        print(f"{response.status_code} {bad.name}")
        if response.status_code >= 500:
            answered_5xx += 1
    return {"bad_inputs_tried": len(inputs), "bad_inputs_5xx": answered_5xx}
