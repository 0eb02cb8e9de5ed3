"""Pages for exploring a scenario: the sortable runs table and the user and item browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from catalog import selectors as catalog_selectors
from catalog.models import EndUser, Item
from dashboards.exports import csv_response
from dashboards.views import VIEW, needs
from recsys_site.errors import DomainError, error_text
from scenarios.models import Scenario
from training import selectors as training_selectors
from training.models import TrainingRun
from training.serving import sample_recommendations, similar_items

HISTORY_CAP = 50
LIST_LENGTH = 10


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
    if user_id := request.GET.get("user", "").strip():
        context.update(_user_context(scenario, user_id))
    elif item_id := request.GET.get("item", "").strip():
        context.update(_item_context(scenario, item_id))
    return render(request, "dashboards/browse.html", context)


def _user_context(scenario: Scenario, external_id: str) -> dict:
    user = EndUser.objects.filter(external_id=external_id).first()
    if user is None:
        return {"missing": f"No end user {external_id}."}
    context = {
        "end_user": user,
        "events": catalog_selectors.user_history(user=user, limit=HISTORY_CAP),
        "event_count": catalog_selectors.event_count(user=user),
    }
    return _with_live_list(
        context,
        scenario,
        "recommendations",
        lambda run: sample_recommendations(scenario=scenario, run=run, user=user, k=LIST_LENGTH),
    )


def _item_context(scenario: Scenario, external_id: str) -> dict:
    item = Item.objects.filter(external_id=external_id).first()
    if item is None:
        return {"missing": f"No item {external_id}."}
    context = {
        "item": item,
        "events": catalog_selectors.item_recent_events(item=item, limit=HISTORY_CAP),
        "event_count": catalog_selectors.event_count(item=item),
    }
    return _with_live_list(
        context,
        scenario,
        "similar",
        lambda run: similar_items(scenario=scenario, item_external_id=external_id, k=LIST_LENGTH),
    )


def _with_live_list(context: dict, scenario: Scenario, name: str, make_list: Callable[[TrainingRun], Any]) -> dict:
    """``context`` with the list the scenario's live run makes under ``name``; what stands instead when there is no
    live run, or when it cannot make the list."""
    if scenario.live_run is None:
        return {**context, "no_live": True}
    try:
        return {**context, name: make_list(scenario.live_run)}
    except DomainError as error:
        return {**context, "list_error": error_text(error)}
