"""GET /metrics: the named series in Prometheus format, for allowed scrapers only."""

import ipaddress

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from recsys_site.celery import app
from tests.factories import clustered_catalog, live_run, scenario
from training.serving import model_cache

pytestmark = pytest.mark.django_db


def _samples(client: Client, **headers) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_model_loads_hits_fallbacks_and_runs(api, client):
    model_cache.clear()
    clustered_catalog()
    live_run(scenario(algorithm="ease"), "ease")
    before = _samples(client)

    for user in ("u1", "u2", "nobody-yet"):
        assert api.get("/api/v1/scenarios/movies/recommendations/", {"user": user}).status_code == 200
    after = _samples(client)

    def grew(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    endpoint = {"endpoint": "recommendations", "scenario": "movies", "method": "GET"}
    assert grew("recsys_request_seconds_count", **endpoint) == 3
    assert grew("recsys_request_seconds_bucket", **endpoint, le="+Inf") == 3
    assert grew("recsys_model_cache_loads_total") == 1 and grew("recsys_model_cache_hits_total") == 2
    assert grew("recsys_fallbacks_total", scenario="movies", fallback="popularity") == 1
    assert _value(after, "recsys_runs", status="succeeded") == 1
    assert _value(after, "recsys_runs", status="failed") == 0
    assert _value(after, "recsys_run_duration_seconds_count", status="succeeded") == 1
    assert _value(after, "recsys_run_duration_seconds_bucket", status="succeeded", le="+Inf") == 1


def test_queue_depth_counts_waiting_messages_per_queue(client):
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("gpu")
    before = _value(_samples(client), "recsys_queue_depth", queue="gpu")
    for _ in range(2):
        app.send_task("training.no_such_task", queue="gpu")  # no worker consumes in this test

    try:
        samples = _samples(client)
        assert _value(samples, "recsys_queue_depth", queue="gpu") == before + 2
        assert ("recsys_queue_depth", frozenset({"queue": "cpu"}.items())) in samples
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("gpu")


def test_a_scraper_from_another_address_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403 and "may not read the metrics" in response.json()["detail"]


def test_the_token_admits_a_scraper_from_anywhere_and_a_wrong_one_does_not(client, settings):
    settings.RECSYS_METRICS_TOKEN = "scrape-secret-123"
    settings.RECSYS_METRICS_ALLOWED_NETWORKS = []

    assert client.get("/metrics").status_code == 403  # the loopback no longer suffices
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert _samples(client, REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret-123")


def test_allowed_networks_admit_their_addresses(client, settings):
    settings.RECSYS_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.1.0.0/16")]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    assert client.get("/metrics").status_code == 403
