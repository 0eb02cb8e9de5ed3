"""Prometheus metrics of the web processes: request latency per endpoint and scenario, the model cache, fallbacks.

Counters live in each process. Under a server with several worker processes, set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder shared by them (prometheus-client's multiprocess mode) so a scrape sums every process;
``/metrics`` (``recsys_site.metrics_view``) reads it when set.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "recsys_request_seconds",
    "Time to answer an HTTP request, by endpoint (URL name) and scenario.",
    ["endpoint", "scenario", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
MODEL_CACHE_HITS = Counter("recsys_model_cache_hits", "Requests served by a model already loaded in the process.")
MODEL_CACHE_LOADS = Counter("recsys_model_cache_loads", "Models loaded (and verified) from their artifact.")
FALLBACKS = Counter(
    "recsys_fallbacks", "Recommendation lists served by a fallback, by scenario and kind.", ["scenario", "fallback"]
)


class RequestMetricsMiddleware:
    """Times every request and labels it by the view's URL name and the scenario slug in the URL, if any."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        # Unmatched addresses share one label: a scanner's random paths must not create series.
        endpoint = (match.view_name or "unnamed") if match else "unmatched"
        scenario = str(match.kwargs.get("slug", "")) if match else ""
        REQUEST_SECONDS.labels(endpoint, scenario, request.method or "").observe(time.perf_counter() - start)
        return response
