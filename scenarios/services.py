"""Writes for scenarios: create and update with full validation, and slice-size refresh."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.selectors import catalog_category_names, catalog_unknown_items
from recsys_site.errors import ValidationFailed
from recsys_site.serving_version import serving_version_bump
from scenarios.dispatch import scenario_slice_refresh_dispatch
from scenarios.models import SLICE_FIELDS, Objective, Scenario, SplitKind
from scenarios.policy import serving_policy_errors
from scenarios.selectors import scenario_slice_size
from training.algorithms.registry import (
    HyperparameterError,
    UnknownAlgorithm,
    algorithm_fits_objective,
    algorithm_params_validate,
    get_algorithm,
    model_names,
)
from training.evaluation.objectives import objective_problem

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_K = 1000

# Fields a client may set; everything else on Scenario is owned by the server.
EDITABLE_FIELDS = (
    "slug",
    "name",
    "description",
    "parent",
    *SLICE_FIELDS,
    "split",
    "validation_share",
    "test_share",
    "k_list",
    "objective",
    "algorithm",
    "hyperparameters",
    "compute_queue",
    "seed",
    "default_k",
    "exclude_seen",
    "serving_policy",
)


def scenario_config_clean(*, data: Mapping[str, Any], instance: Scenario | None = None) -> dict[str, Any]:
    """Validate a scenario's configuration as a whole; return it with hyperparameters completed by defaults.

    ``data`` may be partial when ``instance`` is given (an update): missing
    fields keep the instance's values. Raises :class:`ValidationFailed` whose
    detail maps each bad field (``hyperparameters.<name>`` for a hyperparameter)
    to a list of messages.
    """
    # Missing fields take the stored values (update) or the model's defaults (create).
    base = instance if instance is not None else Scenario()
    merged = {name: getattr(base, name) for name in EDITABLE_FIELDS}
    merged.update(data)
    errors: dict[str, list[str]] = {}
    cleaned = dict(data)
    cleaned["hyperparameters"] = _clean_hyperparameters(merged, errors)
    _check_categories(merged, errors)
    _check_event_weights(merged.get("event_weights") or {}, errors)
    _check_protocol(merged, errors)
    _check_objective(merged, cleaned["hyperparameters"] or {}, errors)
    _check_parent(merged.get("parent"), instance, errors)
    _check_serving_policy(merged.get("serving_policy"), errors)
    if errors:
        raise ValidationFailed("invalid scenario", detail=errors)
    return cleaned


@transaction.atomic
def scenario_create(*, data: Mapping[str, Any]) -> Scenario:
    cleaned = scenario_config_clean(data=data)
    scenario = Scenario(**{name: value for name, value in cleaned.items() if name in EDITABLE_FIELDS})
    scenario.full_clean()
    scenario.save()
    return scenario


@transaction.atomic
def scenario_update(*, scenario: Scenario, data: Mapping[str, Any]) -> Scenario:
    if "slug" in data and data["slug"] != scenario.slug:
        # Schedules, STAR domains, artifact folders and clients' URLs refer to a scenario by its slug.
        raise ValidationFailed("slug is fixed", detail={"slug": ["cannot be changed after the scenario is created"]})
    cleaned = scenario_config_clean(data=data, instance=scenario)
    for name, value in cleaned.items():
        if name in EDITABLE_FIELDS:
            setattr(scenario, name, value)
    scenario.full_clean()
    scenario.save()
    serving_version_bump()
    return scenario


def scenario_slice_refresh(*, scenario: Scenario) -> dict:
    """Compute the slice size and store it on the scenario (for lists and dashboards)."""
    stats = scenario_slice_size(scenario=scenario)
    Scenario.objects.filter(pk=scenario.pk).update(slice_stats=stats, slice_computed_at=timezone.now())
    scenario.slice_stats = stats
    return stats


def scenario_slice_refresh_queue(*, scenario: Scenario) -> str:
    """Have a worker recompute the stored slice size once the transaction commits; returns its task id."""
    return scenario_slice_refresh_dispatch(scenario_id=scenario.pk)


def _clean_hyperparameters(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    algorithm = merged.get("algorithm") or "popularity"
    params = merged.get("hyperparameters") or {}
    if not isinstance(params, Mapping):
        errors["hyperparameters"] = ["must be an object of name → value"]
        return {}
    try:
        return algorithm_params_validate(name=algorithm, params=params)
    except UnknownAlgorithm as error:
        errors["algorithm"] = [str(error)]
    except HyperparameterError as error:
        for name, message in error.errors.items():
            errors[f"hyperparameters.{name}"] = [message]
    return dict(params)


def _check_categories(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    for field in ("include_categories", "exclude_categories"):
        value = merged.get(field) or []
        if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
            errors[field] = ["must be a list of non-empty category names"]
    _check_known_categories(merged, errors)
    include = set(merged.get("include_categories") or [])
    overlap = include.intersection(merged.get("exclude_categories") or [])
    if overlap and "exclude_categories" not in errors:
        errors["exclude_categories"] = [f"also included: {', '.join(sorted(map(str, overlap)))}"]


def _check_known_categories(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    """A category no item has would empty the slice (the filter matches exactly, case included) and the run
    would fail much later; refuse it now, naming the closest known spellings. An empty catalogue has nothing to
    compare with (data is often loaded after the scenarios are defined), so anything goes there."""
    fields = [f for f in ("include_categories", "exclude_categories") if f not in errors and merged.get(f)]
    if not fields:
        return
    known = catalog_category_names()
    if not known:
        return
    for field in fields:
        unknown = [name for name in merged[field] if name not in known]
        if unknown:
            errors[field] = [_unknown_category_message(name, known) for name in unknown]


def _unknown_category_message(name: str, known: set[str]) -> str:
    by_lower = {category.lower(): category for category in known}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(by_lower[m] for m in matches)}?" if matches else "no item has it"
    return f"unknown category {name!r}: {hint}"


def _check_serving_policy(policy: Any, errors: dict[str, list[str]]) -> None:
    """The policy's shape, then its category and item names against the catalogue (when it has any)."""
    found = serving_policy_errors(policy if policy is not None else {})
    errors.update(found)
    if found or not policy:
        return
    known = catalog_category_names()
    for field in ("exclude_categories", "boost_categories"):
        unknown = [name for name in policy.get(field) or [] if known and name not in known]
        if unknown:
            errors[f"serving_policy.{field}"] = [_unknown_category_message(name, known) for name in unknown]
    missing = catalog_unknown_items(external_ids=set(policy.get("exclude_items") or []))
    if missing:
        errors["serving_policy.exclude_items"] = [f"unknown items: {', '.join(sorted(missing)[:20])}"]


def _check_event_weights(weights: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(weights, Mapping):
        errors["event_weights"] = ["must be an object of event kind → weight"]
        return
    problems = []
    for kind, weight in weights.items():
        if not _KIND_PATTERN.match(str(kind)):
            problems.append(f"{kind!r} is not a valid event kind")
        elif isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            problems.append(f"weight of {kind!r} must be a positive number")
    if problems:
        errors["event_weights"] = problems


def _check_protocol(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    k_list = merged.get("k_list")
    if (
        not isinstance(k_list, list)
        or not k_list
        or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_K for k in k_list)
    ):
        errors["k_list"] = [f"must be a non-empty list of integers between 1 and {MAX_K}"]
    split = merged.get("split", SplitKind.RANDOM)
    validation_share = merged.get("validation_share", 0.1) or 0.0
    test_share = merged.get("test_share", 0.1) or 0.0
    if split != SplitKind.LEAVE_LAST_OUT:
        if test_share <= 0:
            errors["test_share"] = ["must be above 0 for a temporal or random split"]
        elif validation_share + test_share >= 0.9:
            errors["test_share"] = ["validation and test shares together must leave at least 10% for training"]


def _check_objective(
    merged: Mapping[str, Any], hyperparameters: Mapping[str, Any], errors: dict[str, list[str]]
) -> None:
    """Under the rating objective the model must predict ratings, under the ranking one it must not (it would learn
    the kinds' weights as ratings); a choice among models (``auto``) must optimise a figure the scenario measures."""
    if "algorithm" in errors:
        return
    try:
        algorithm = get_algorithm(merged.get("algorithm") or "")
    except UnknownAlgorithm:
        return  # reported with the hyperparameters
    ratings = merged.get("objective") == Objective.RATING
    if algorithm.chooses_model:
        chosen = str(hyperparameters.get("objective") or "")
        problem = objective_problem(chosen, ratings=ratings) if chosen else None
        if problem:
            errors.setdefault("hyperparameters.objective", [problem])
        return
    if algorithm_fits_objective(algorithm.name, ratings=ratings):
        return
    fitting = ", ".join(name for name in model_names() if algorithm_fits_objective(name, ratings=ratings))
    if ratings:
        problem = f"does not predict ratings; under the rating objective use one that does ({fitting})"
    else:
        problem = (
            "predicts ratings, and under the ranking objective the events carry no ratings; choose the rating "
            f"objective, or a model that ranks ({fitting})"
        )
    errors.setdefault("algorithm", []).append(f"{algorithm.name} {problem}")


def _check_parent(parent: Scenario | None, instance: Scenario | None, errors: dict[str, list[str]]) -> None:
    if parent is None or instance is None or instance.pk is None:
        return
    ancestor: Scenario | None = parent
    while ancestor is not None:
        if ancestor.pk == instance.pk:
            errors["parent"] = ["a scenario cannot be its own ancestor"]
            return
        ancestor = ancestor.parent


# --- retrain schedule (stored with django-celery-beat) ---------------------------------------------


def schedule_task_name(scenario: Scenario) -> str:
    return f"retrain:{scenario.slug}"


def scenario_schedule_get(*, scenario: Scenario) -> str:
    """The scenario's retrain schedule as a 5-field cron expression, or "" when it has none."""
    from django_celery_beat.models import PeriodicTask

    task = (
        PeriodicTask.objects.filter(name=schedule_task_name(scenario), enabled=True).select_related("crontab").first()
    )
    if task is None or task.crontab is None:
        return ""
    cron = task.crontab
    return " ".join([cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week])


@transaction.atomic
def scenario_schedule_set(*, scenario: Scenario, cron: str) -> None:
    """Set (or with an empty string, remove) the retrain schedule; times are UTC."""
    import json

    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = schedule_task_name(scenario)
    cron = " ".join(cron.split())
    if not cron:
        PeriodicTask.objects.filter(name=name).delete()
        return
    fields = scenario_schedule_clean(cron=cron)
    schedule, _ = CrontabSchedule.objects.get_or_create(**fields, timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "crontab": schedule,
            "task": "training.scheduled_retrain",
            "args": json.dumps([scenario.pk]),
            "enabled": True,
            "queue": "cpu",
        },
    )


def scenario_schedule_clean(*, cron: str) -> dict[str, str]:
    """The five fields of a cron line by name; raises ``ValidationFailed`` on the ``schedule`` field."""
    from celery.schedules import ParseException, crontab_parser

    parts = cron.split()
    if len(parts) != 5:
        raise ValidationFailed("bad schedule", detail={"schedule": ["five fields: minute hour day month weekday"]})
    limits = (
        ("minute", 60, 0),
        ("hour", 24, 0),
        ("day_of_month", 31, 1),
        ("month_of_year", 12, 1),
        ("day_of_week", 7, 0),
    )
    for value, (name, size, start) in zip(parts, limits, strict=True):
        try:
            crontab_parser(size, start).parse(value)
        except (ParseException, ValueError) as error:
            raise ValidationFailed("bad schedule", detail={"schedule": [f"{name} {value!r}: {error}"]}) from None
    return dict(zip([name for name, _, _ in limits], parts, strict=True))
