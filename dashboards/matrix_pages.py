"""The scenario × model matrix pages: the index of groups, one group's matrix, its CSV and "compute"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboards import figures
from dashboards.exports import csv_response
from dashboards.views import RETRAIN, VIEW, needs
from recsys_site.errors import DomainError, error_text
from scenarios.models import Scenario
from training import selectors as training_selectors
from training.matrix import baselines_parse, group_matrix_queue

CSV_HEADER = ["run", "algorithm", "trained_on", "scenario", "state", "reason", "baseline_run", "split", "metric",
              "value", "change_vs_baseline"]  # fmt: skip


@needs(VIEW)
def matrix_index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/matrix_index.html", {"groups": training_selectors.matrix_groups()})


@needs(VIEW)
def matrix(request: HttpRequest, slug: str) -> HttpResponse:
    group = get_object_or_404(Scenario, slug=slug)
    metric = request.GET.get("metric") or "ndcg@10"
    try:
        baselines = baselines_parse(group=group, values=request.GET.getlist("baseline"))
        table = training_selectors.group_matrix_table(group=group, metric=metric, baselines=baselines)
    except DomainError as error:
        messages.error(request, error_text(error))
        table = training_selectors.group_matrix_table(group=group, metric=metric)
    if request.GET.get("export") == "matrix":
        return csv_response(f"{slug}-matrix", CSV_HEADER, matrix_csv_rows(table.matrix))
    return render(request, "dashboards/matrix.html", _context(group, table))


def _context(group: Scenario, table: training_selectors.MatrixTable) -> dict:
    result = table.matrix
    members = result.members
    heatmap = figures.matrix_heatmap(
        table.labels, [m.slug for m in members], table.values, table.deltas, table.states, table.metric
    )
    job = result.latest_job
    return {
        "group": group,
        "matrix": result,
        "table": table,
        "complete": table.complete,
        "job": job,
        "job_running": job is not None and not job.is_finished,
        "metrics": sorted({name for cell in result.cells.values() for name in cell.metrics if "@" in name}),
        "baseline_choices": [
            {
                "member": member,
                "runs": [run for run in result.runs if result.cells[(run.pk, member.pk)].state == "ok"],
                "chosen": result.baselines[member.pk],
                "picked": result.chosen[member.pk],
            }
            for member in members
        ],
        "rows": [
            {"label": label, "cells": list(zip(members, values, states, reasons, strict=True))}
            for label, values, states, reasons in zip(
                table.labels, table.values, table.states, table.reasons, strict=True
            )
        ],
        "heatmap": figures.to_html(heatmap, element_id="matrix-plot") if result.runs and members else None,
    }


def matrix_csv_rows(result) -> list[list]:
    """One row per run, member and metric (every metric at every K the cell holds)."""
    rows = []
    for run in result.runs:
        for member in result.members:
            cell = result.cells[(run.pk, member.pk)]
            base = result.baseline_metrics(member)
            split = cell.split.get("test_digest", "")[:12]
            baseline = result.baselines[member.pk]
            head = [run.pk, run.algorithm, run.scenario.slug, member.slug, cell.state, cell.reason, baseline, split]
            if not cell.metrics:
                rows.append([*head, "", "", ""])
            for name, value in sorted(cell.metrics.items()):
                change = value - base[name] if cell.state == "ok" and name in base else ""
                rows.append([*head, name, value, change])
    return rows


@require_POST
@needs(RETRAIN)
def matrix_compute(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        group_matrix_queue(group=get_object_or_404(Scenario, slug=slug), created_by=request.user)
    except DomainError as error:
        messages.error(request, error_text(error))
        return redirect("dashboards:matrix", slug=slug)
    messages.success(request, "Missing and stale cells are being computed on a worker; this page reloads when done.")
    return redirect("dashboards:matrix", slug=slug)
