"""Figures read at scrape time for ``/metrics``: runs by status, run durations, queue depths.

They come from the database and the broker, so every web process reports the same values whatever worker
processes ran the runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from recsys_site.celery import app
from training.dispatch import EMBED_QUEUE
from training.models import RunStatus, TrainingRun

QUEUES = tuple(dict.fromkeys(("cpu", "gpu", EMBED_QUEUE)))
DURATION_BUCKETS = (10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class RunsCollector(Collector):
    """``recsys_runs{status}`` and ``recsys_run_duration_seconds{status}`` over every finished run."""

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("recsys_runs", "Training runs by status.", labels=["status"])
        counts = dict(TrainingRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        for status in RunStatus.values:
            runs.add_metric([status], counts.get(status, 0))
        yield runs
        yield self._durations()

    def _durations(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "recsys_run_duration_seconds", "Wall time of finished runs, start to finish.", labels=["status"]
        )
        finished = TrainingRun.objects.filter(started_at__isnull=False, finished_at__isnull=False).annotate(
            duration=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        )
        for status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
            rows = finished.filter(status=status).aggregate(
                total=Sum("duration"),
                count=Count("id"),
                **{
                    f"le{n}": Count("id", filter=Q(duration__lte=timedelta(seconds=b)))
                    for n, b in enumerate(DURATION_BUCKETS)
                },
            )
            buckets = [(str(b), rows[f"le{n}"]) for n, b in enumerate(DURATION_BUCKETS)] + [("+Inf", rows["count"])]
            total = rows["total"].total_seconds() if rows["total"] else 0.0
            family.add_metric([str(status)], buckets, total)
        return family


class QueueCollector(Collector):
    """``recsys_queue_depth{queue}``: messages waiting on each broker queue (-1 when the broker cannot say)."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("recsys_queue_depth", "Task messages waiting on a broker queue.", labels=["queue"])
        try:
            with app.connection_for_read() as connection:
                channel = connection.default_channel
                for queue in QUEUES:
                    depth.add_metric([queue], _queue_size(channel, queue))
        except OSError:
            for queue in QUEUES:
                depth.add_metric([queue], -1)
        yield depth


def _queue_size(channel, queue: str) -> int:
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except channel.connection.channel_errors:
        return 0  # never declared: nothing was ever sent to it
