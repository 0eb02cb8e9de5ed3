"""``GET /metrics``: the Prometheus text format, for the scrapers ``RECSYS_METRICS_*`` allow."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from training.monitoring import QueueCollector, RunsCollector


def metrics(request: HttpRequest) -> HttpResponse:
    if not scraper_allowed(request):
        return JsonResponse({"detail": "this address or token may not read the metrics", "errors": {}}, status=403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(RunsCollector())
    registry.register(QueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def scraper_allowed(request: HttpRequest) -> bool:
    """A bearer token equal to ``RECSYS_METRICS_TOKEN`` (when set), or a client in ``RECSYS_METRICS_ALLOWED_IPS``."""
    token = settings.RECSYS_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.RECSYS_METRICS_ALLOWED_NETWORKS)


class _ProcessMetrics(Collector):
    """This process's metrics, or every process's when prometheus-client's multiprocess folder is set."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
