"""Pages for exploring a scenario: the sortable runs table and the user and item browser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from catalog import selectors as catalog_selectors
from catalog.models import EndUser, Interaction, Item
from dashboards.exports import csv_response
from dashboards.views import VIEW, needs
from recsys_site.errors import DomainError, error_text
from scenarios.models import Scenario
from training import selectors as training_selectors
from training.models import TrainingRun
from training.serving import sample_recommendations, similar_items

HISTORY_CAP = 50
LIST_LENGTH = 10


@dataclass(frozen=True)
class _Browsed:
    """One kind of row the browser shows: its name in the page's context, its recent events, and the list the live
    run makes for it, shown as ``list_name``."""

    model: type[EndUser] | type[Item]
    context_name: str
    recent_events: Callable[..., QuerySet[Interaction]]
    list_name: str
    make_list: Callable[[Scenario, TrainingRun, Any], Any]


def _recommendations(scenario: Scenario, run: TrainingRun, user: EndUser) -> Any:
    return sample_recommendations(scenario=scenario, run=run, user=user, k=LIST_LENGTH)


def _similar(scenario: Scenario, run: TrainingRun, item: Item) -> Any:
    return similar_items(scenario=scenario, item_external_id=item.external_id, k=LIST_LENGTH)


# Keyed by the query-string parameter that names the row (user first), which is also the keyword the catalog
# selectors take it by.
BROWSED = {
    "user": _Browsed(EndUser, "end_user", catalog_selectors.user_history, "recommendations", _recommendations),
    "item": _Browsed(Item, "item", catalog_selectors.item_recent_events, "similar", _similar),
}


@needs(VIEW)
def runs_table(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    table = training_selectors.runs_table(
        scenario=scenario,
        sort=request.GET.get("sort", "created"),
        descending=request.GET.get("order", "desc") != "asc",
        every_hyperparameter=request.GET.get("params") == "all",
    )
    columns = [*training_selectors.FIXED_COLUMNS]
    columns += [f"metric:{name}" for name in table.metrics] + [f"param:{name}" for name in table.hyperparameters]
    if request.GET.get("export") == "csv":
        rows = [[_plain(row.values[column]) for column in columns] for row in table.rows]
        return csv_response(f"{slug}-runs", [column.split(":", 1)[-1] for column in columns], rows)
    context = {
        "scenario": scenario,
        "table": table,
        "headers": [_header(request, table, column) for column in columns],
        "rows": [{"run": row.run, "cells": [row.values[column] for column in columns]} for row in table.rows],
        "first_metric": len(training_selectors.FIXED_COLUMNS),
        "first_param": len(training_selectors.FIXED_COLUMNS) + len(table.metrics),
    }
    return render(request, "dashboards/runs_table.html", context)


def _header(request: HttpRequest, table, column: str) -> dict:
    """A column heading that sorts by the column: descending first, ascending on a second click."""
    active = table.sort == column
    order = "asc" if active and table.descending else "desc"
    query = request.GET.copy()
    query["sort"], query["order"] = column, order
    query.pop("export", None)
    return {
        "key": column,
        "label": column.split(":", 1)[-1],
        "kind": column.split(":", 1)[0] if ":" in column else "fixed",
        "url": f"?{query.urlencode()}",
        "arrow": ("▼" if table.descending else "▲") if active else "",
    }


def _plain(value) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


@needs(VIEW)
def browse(request: HttpRequest, slug: str) -> HttpResponse:
    """Search a user or an item; a user's events and recommendations, an item's events and similar items, under
    the scenario's live model."""
    scenario = get_object_or_404(Scenario.objects.select_related("live_run"), slug=slug)
    if request.GET.get("random") == "user":
        user = catalog_selectors.random_active_user()
        if user is not None:
            return redirect(f"{reverse('dashboards:browse', args=[slug])}?user={user.external_id}")
    query = request.GET.get("q", "").strip()[:255]
    context: dict = {"scenario": scenario, "query": query, "history_cap": HISTORY_CAP}
    if query:
        context["users"] = catalog_selectors.users_search(query=query)
        context["items"] = catalog_selectors.items_search(query=query)
    for kind in BROWSED:
        if external_id := request.GET.get(kind, "").strip():
            context.update(_browsed_context(scenario, kind, external_id))
            break
    return render(request, "dashboards/browse.html", context)


def _browsed_context(scenario: Scenario, kind: str, external_id: str) -> dict:
    """The ``kind`` of row named ``external_id``, its recent events and the list the live run makes for it."""
    browsed = BROWSED[kind]
    row = browsed.model.objects.filter(external_id=external_id).first()
    if row is None:
        return {"missing": f"No {browsed.model._meta.verbose_name} {external_id}."}
    of_row: dict[str, Any] = {kind: row}
    context = {
        browsed.context_name: row,
        "events": browsed.recent_events(**of_row, limit=HISTORY_CAP),
        "event_count": catalog_selectors.event_count(**of_row),
    }
    return _with_live_list(context, scenario, browsed.list_name, lambda run: browsed.make_list(scenario, run, row))


def _with_live_list(context: dict, scenario: Scenario, name: str, make_list: Callable[[TrainingRun], Any]) -> dict:
    """``context`` with the list the scenario's live run makes under ``name``; what stands instead when there is no
    live run, or when it cannot make the list."""
    if scenario.live_run is None:
        return {**context, "no_live": True}
    try:
        return {**context, name: make_list(scenario.live_run)}
    except DomainError as error:
        return {**context, "list_error": error_text(error)}
