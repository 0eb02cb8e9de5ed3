"""The analysts' pages: thin views over the services and selectors of the other apps."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from catalog import selectors as catalog_selectors
from catalog.models import EndUser
from dashboards import figures
from dashboards.exports import csv_response as _csv
from dashboards.forms import ScenarioForm, StudyForm
from dashboards.roles import user_role
from recsys_site.errors import DomainError, error_text
from scenarios.models import Objective, Scenario
from scenarios.services import (
    scenario_create,
    scenario_schedule_get,
    scenario_schedule_set,
    scenario_slice_refresh_queue,
    scenario_update,
)
from training import selectors as training_selectors
from training.comparisons import PRIMARY_K, RunComparison, comparison_csv_header, comparison_csv_rows, runs_compare
from training.evaluation.rating import RATING_METRICS
from training.models import TrainingRun
from training.services import scenario_rollback, training_run_create, training_run_promote
from training.splits import scenario_split_label
from training.tuning.auto import any_run_cancel
from training.tuning.selectors import auto_run_selection

VIEW = "scenarios.view_scenario"
EDIT = "scenarios.change_scenario"
RETRAIN = "training.add_trainingrun"
SAMPLES_HISTORY = 30  # the user's most recent events shown beside the lists
RANKING_CHOICES = ("ndcg@10", "recall@10", "precision@10", "map@10", "mrr@10", "hit@10")
RATING_CHOICES = RATING_METRICS  # what a rating scenario's runs record besides the ranking metrics


def needs(permission: str):
    """Anonymous visitors go to the login page; a logged-in user without ``permission`` gets 403."""

    def decorate(view):
        return login_required(permission_required(permission, raise_exception=True)(view))

    return decorate


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to the form's ``next`` when it is a local URL, else to ``default``."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return redirect(target if target and safe else default)


def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database accepts a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboards:scenario-list")


# --- scenarios -----------------------------------------------------------------------------------


@needs(VIEW)
def scenario_list(request: HttpRequest) -> HttpResponse:
    rows = training_selectors.scenario_rows()
    return render(
        request, "dashboards/scenario_list.html", {"rows": rows, "counts": catalog_selectors.catalog_counts()}
    )


@needs(EDIT)
def scenario_create_page(request: HttpRequest) -> HttpResponse:
    form = ScenarioForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            scenario = scenario_create(data=form.scenario_data())
            scenario_schedule_set(scenario=scenario, cron=form.cleaned_data["schedule"])
            scenario_slice_refresh_queue(scenario=scenario)
        except DomainError as error:
            form.attach_errors(error.detail_by_field())
        else:
            messages.success(request, f"Scenario {scenario.slug} created.")
            return redirect("dashboards:scenario-detail", slug=scenario.slug)
    return render(request, "dashboards/scenario_form.html", {"form": form, "creating": True})


@needs(EDIT)
def scenario_edit_page(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    form = ScenarioForm(request.POST or None, instance=scenario, schedule=scenario_schedule_get(scenario=scenario))
    if request.method == "POST" and form.is_valid():
        try:
            scenario = scenario_update(scenario=Scenario.objects.get(pk=scenario.pk), data=form.scenario_data())
            scenario_schedule_set(scenario=scenario, cron=form.cleaned_data["schedule"])
            scenario_slice_refresh_queue(scenario=scenario)
        except DomainError as error:
            form.attach_errors(error.detail_by_field())
        else:
            messages.success(request, "Scenario saved.")
            return redirect("dashboards:scenario-detail", slug=scenario.slug)
    return render(request, "dashboards/scenario_form.html", {"form": form, "scenario": scenario, "creating": False})


@needs(VIEW)
def scenario_detail(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario.objects.select_related("live_run", "parent"), slug=slug)
    metric = request.GET.get("metric") or ("rmse" if scenario.objective == Objective.RATING else "ndcg@10")
    points, promotions, changes = training_selectors.metric_timeline(scenario=scenario, metric=metric)
    if request.GET.get("export") == "timeline":
        return _csv(
            f"{slug}-{metric}-timeline",
            ["run", "algorithm", "finished_at", metric, "live", "segment", "split"],
            [
                (
                    p.run_id,
                    p.algorithm,
                    p.finished_at and p.finished_at.isoformat(),
                    p.value,
                    p.is_live,
                    p.segment,
                    p.split,
                )
                for p in points
            ],
        )
    timeline = figures.to_html(figures.metric_timeline(points, promotions, metric, changes), element_id="timeline-plot")
    runs = training_selectors.scenario_runs(scenario=scenario)
    context = {
        "scenario": scenario,
        "runs": runs,
        "runs_with_deleted_users": [run for run in runs if run.contains_deleted_users],
        "timeline": timeline if points else None,
        "timeline_changes": changes,
        "split_uses": training_selectors.scenario_split_uses(scenario=scenario),
        "next_split": scenario_split_label(scenario=scenario),
        "metric": metric,
        "metric_choices": [*RANKING_CHOICES, *(RATING_CHOICES if scenario.objective == Objective.RATING else ())],
        "schedule": scenario_schedule_get(scenario=scenario),
        "history": training_selectors.promotion_history(scenario=scenario),
        "rollback_to": training_selectors.rollback_target(scenario=scenario),
        "studies": list(scenario.studies.all()[:10]),
        "study_form": StudyForm(scenario=scenario),
    }
    return render(request, "dashboards/scenario_detail.html", context)


@require_POST
@needs(RETRAIN)
def scenario_retrain(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    try:
        run = training_run_create(scenario=scenario, created_by=request.user)
    except DomainError as error:
        messages.error(request, f"Retrain refused: {error_text(error)}")
    else:
        messages.success(request, f"Run {run.pk} queued.")
    return redirect("dashboards:scenario-detail", slug=slug)


@needs(VIEW)
def scenario_runs_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Status and progress of the scenario's latest runs, polled by the runs table."""
    scenario = get_object_or_404(Scenario, slug=slug)
    runs = training_selectors.scenario_runs(scenario=scenario)
    return JsonResponse({"runs": [_run_state(run) for run in runs]})


def _run_state(run: TrainingRun) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "phase": run.phase,
        "progress": run.progress,
        "epoch": run.epoch,
        "total_epochs": run.total_epochs,
        "ndcg": run.metrics.get("ndcg@10"),
        "rmse": run.metrics.get("rmse"),
        "error": run.error[:300],
    }


# --- runs --------------------------------------------------------------------------------------------


@needs(VIEW)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("scenario", "parent", "created_by"), pk=pk)
    ks = run.protocol.get("k_list", [])
    if request.GET.get("export") == "history":
        keys = sorted({key for entry in run.history for key in entry})
        return _csv(f"run-{pk}-history", keys, [[entry.get(k) for k in keys] for entry in run.history])
    if request.GET.get("export") == "metrics":
        return _csv(f"run-{pk}-metrics", ["metric", "value"], sorted(run.metrics.items()))
    ancestors, children = training_selectors.run_lineage(run=run)
    costs = _serving_costs([*reversed(ancestors), run, *children])
    if request.GET.get("export") == "costs":
        header = ["run", "algorithm", "ndcg@10", "latency_ms", "parameters", "batch_users", "device"]
        rows = [
            [row["run"].pk, row["run"].algorithm, *(row.get(key) for key in header[2:])] for row in costs["cost_rows"]
        ]
        return _csv(f"run-{pk}-serving-cost", header, rows)
    context = {
        "run": run,
        "curve": figures.to_html(figures.training_curve(run.history, run.kept_epoch), element_id="curve-plot")
        if run.history
        else None,
        "metrics_plot": figures.to_html(figures.metrics_by_k(run.metrics, ks), element_id="metrics-plot")
        if run.metrics
        else None,
        "metric_rows": _metric_rows(run.metrics, ks),
        "slice_rows": _slice_rows(run.metrics),
        "ancestors": ancestors,
        "children": children,
        "is_live": run.scenario.live_run_id == run.pk,
        "selection": auto_run_selection(run=run),
        **_blend_context(run),
        **costs,
    }
    return render(request, "dashboards/run_detail.html", context)


def _blend_context(run: TrainingRun) -> dict[str, object]:
    """A blend's member runs with the weight each got, in the order the blend numbers them (by id), and the better
    mix on validation it did not take (within one standard error of its own), or None."""
    members = list(run.members.order_by("pk"))
    fit = run.history[-1] if run.history else {}
    best_mix = None
    if "best_mix_ndcg@10" in fit:
        best_mix = {
            "weights": [(member, fit.get(f"best_mix_weight_{n}")) for n, member in enumerate(members, start=1)],
            "ndcg": fit["best_mix_ndcg@10"],
            "gain": fit["best_mix_ndcg@10"] - fit["ndcg@10"],
            "standard_error": fit["best_mix_standard_error"],
        }
    weights = [(member, fit.get(f"weight_{n}")) for n, member in enumerate(members, start=1)]
    return {"blend_members": weights, "blend_best_mix": best_mix}


def _serving_costs(runs: list[TrainingRun]) -> dict:
    """Quality against serving cost for a run and its lineage (a teacher beside its students, a parent beside
    its fine-tuned children): rows and a scatter plot of the runs that recorded both."""
    rows = [
        {"run": run, "ndcg": run.metrics["ndcg@10"], "ndcg@10": run.metrics["ndcg@10"], **run.serving}
        for run in runs
        if run.serving.get("latency_ms") is not None and "ndcg@10" in run.metrics
    ]
    if not rows:
        return {"cost_rows": [], "cost_plot": None}
    figure = figures.quality_vs_cost(
        [f"run {row['run'].pk} {row['run'].algorithm}" for row in rows],
        [row["ndcg"] for row in rows],
        [row["latency_ms"] for row in rows],
        [row["parameters"] for row in rows],
    )
    return {"cost_rows": rows, "cost_plot": figures.to_html(figure, element_id="cost-plot") if len(rows) > 1 else None}


def _slice_rows(metrics: dict) -> list[dict]:
    """Cold / warm / hot users and items: size and metrics, from the run's ``slice.*`` metrics."""
    rows = []
    for side in ("users", "items"):
        for name in ("cold", "warm", "hot"):
            prefix = f"slice.{side}.{name}."
            values = {key[len(prefix) :]: value for key, value in metrics.items() if key.startswith(prefix)}
            if values:
                rows.append({"side": side, "slice": name, "count": values.pop("count", 0), "values": values})
    return rows


def _metric_rows(metrics: dict, ks: list[int]) -> list[dict]:
    names = ("precision", "recall", "ndcg", "map", "mrr", "hit", "coverage", "average_popularity")
    return [
        {"name": name, "values": [metrics.get(f"{name}@{k}") for k in ks]}
        for name in names
        if any(f"{name}@{k}" in metrics for k in ks)
    ]


@require_POST
@needs(RETRAIN)
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        any_run_cancel(run=run)
        messages.success(request, f"Cancellation of run {pk} requested.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    return _back(request, reverse("dashboards:run-detail", args=[pk]))


def _reason(request: HttpRequest) -> str:
    return request.POST.get("reason", "").strip()[:500]


@require_POST
@needs(EDIT)
def run_promote(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    if not _reason(request):
        messages.error(request, f"Run {pk} was not promoted: give a reason (it is kept in the scenario's history).")
        return _back(request, reverse("dashboards:run-detail", args=[pk]))
    try:
        training_run_promote(
            run=run, actor=request.user, force=request.POST.get("force") == "1", reason=_reason(request)
        )
        messages.success(request, f"Run {pk} is now live for {run.scenario.slug}.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    return _back(request, reverse("dashboards:run-detail", args=[pk]))


@require_POST
@needs(EDIT)
def scenario_rollback_page(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    if not _reason(request):
        messages.error(request, "Nothing was rolled back: give a reason (it is kept in the scenario's history).")
        return redirect("dashboards:scenario-detail", slug=slug)
    try:
        promotion = scenario_rollback(scenario=scenario, actor=request.user, reason=_reason(request))
        messages.success(request, f"Rolled back: run {promotion.run_id} serves {slug} again.")
    except DomainError as error:
        messages.error(request, f"Rollback refused: {error_text(error)}")
    return redirect("dashboards:scenario-detail", slug=slug)


# --- compare ----------------------------------------------------------------------------------------


@needs(VIEW)
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    chosen = [int(value) for value in request.GET.getlist("runs") if value.isdigit()]
    available = training_selectors.scenario_succeeded_runs(scenario=scenario)
    selected = training_selectors.runs_chosen(scenario=scenario, ids=chosen)
    context: dict = {"scenario": scenario, "available": available, "chosen": chosen}
    picked = request.GET.get("baseline", "")
    baseline = next((run for run in selected if str(run.pk) == picked), None)
    if picked and baseline is None:
        context["error"] = f"The baseline must be one of the runs compared; {picked!r} is not."
        return render(request, "dashboards/compare.html", context, status=400)
    if len(selected) < 2:
        return render(request, "dashboards/compare.html", context)
    comparison = runs_compare(runs=selected, baseline=baseline, live_run_id=scenario.live_run_id)
    labels = [f"run {run.pk} · {run.algorithm}" for run in comparison.runs]
    export = request.GET.get("export")
    if export == "compare":
        return _csv(f"{slug}-compare", comparison_csv_header(), comparison_csv_rows(comparison))
    partner = comparison.paired_run
    difference_label = f"{labels[comparison.runs.index(partner)]} − {labels[0]}" if partner else ""
    if export == "differences":
        differences = enumerate(comparison.ndcg_differences, start=1)
        return _csv(f"{slug}-ndcg-differences", ["user_index", f"ndcg@10 {difference_label}"], differences)
    primary = [metric for metric in comparison.metrics if metric.endswith(f"@{PRIMARY_K}")] or comparison.metrics
    context.update(
        comparison=comparison,
        baseline=comparison.baseline,
        bars=figures.to_html(figures.comparison_bars(labels, primary, comparison.intervals), element_id="compare-plot"),
        histogram=figures.to_html(
            figures.difference_histogram(comparison.ndcg_differences, difference_label), element_id="difference-plot"
        )
        if comparison.ndcg_differences
        else None,
        mean_rows=_mean_rows(comparison),
        test_rows=_test_rows(comparison, labels),
        unpaired=[comparison.unpaired[run.pk] for run in comparison.runs if run.pk in comparison.unpaired],
    )
    return render(request, "dashboards/compare.html", context)


def _mean_rows(comparison: RunComparison) -> list[dict]:
    """Per metric (every K), each run's mean and interval, the baseline first."""
    return [{"metric": metric, "intervals": comparison.intervals[metric]} for metric in comparison.metrics]


def _test_rows(comparison: RunComparison, labels: list[str]) -> list[dict]:
    rows = []
    for metric in comparison.metrics:
        for index, test in enumerate(comparison.tests[metric]):
            if test is None:
                continue
            better = {"a": labels[0], "b": labels[index]}.get(test.better or "", "no significant difference")
            rows.append(
                {
                    "metric": metric,
                    "against": labels[index],
                    "difference": test.mean_difference,
                    "low": test.interval.low,
                    "high": test.interval.high,
                    "p": test.p_value,
                    "wilcoxon_p": test.wilcoxon_p,
                    "better": better,
                    "n": test.n_users,
                }
            )
    return rows


# --- sample recommendations ------------------------------------------------------------------------


@needs(VIEW)
def samples(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario.objects.select_related("live_run"), slug=slug)
    external_id = request.GET.get("user", "").strip()
    runs = training_selectors.scenario_succeeded_runs(scenario=scenario)
    other_id = request.GET.get("run", "")
    k_text = request.GET.get("k", "") or "10"
    if not k_text.isdigit():
        return JsonResponse({"detail": "k must be a whole number from 1 to 100"}, status=400)
    if request.GET.get("random") == "user" and (drawn := catalog_selectors.random_active_user()) is not None:
        query = urlencode({"user": drawn.external_id, "run": other_id, "k": k_text})
        return redirect(f"{reverse('dashboards:samples', args=[slug])}?{query}")
    context = {"scenario": scenario, "runs": runs, "user_query": external_id, "other_id": other_id}
    user = EndUser.objects.filter(external_id=external_id).first() if external_id else None
    if external_id and user is None:
        context.update(not_found=True, close_users=catalog_selectors.users_search(query=external_id, limit=10))
    elif user is not None:
        k = min(max(int(k_text), 1), 100)
        other = runs.filter(pk=other_id).first() if other_id.isdigit() else None
        lists = training_selectors.sample_lists(scenario=scenario, user=user, k=k, other=other)
        context.update(
            end_user=user,
            history=catalog_selectors.user_history(user=user, limit=SAMPLES_HISTORY),
            history_cap=SAMPLES_HISTORY,
            event_count=catalog_selectors.event_count(user=user),
            lists=lists,
            shared=training_selectors.sample_lists_shared(lists),
            k=k,
        )
    return render(request, "dashboards/samples.html", context)


# --- data overview --------------------------------------------------------------------------------------


@needs(VIEW)
def data_overview(request: HttpRequest) -> HttpResponse:
    days, kinds = catalog_selectors.events_per_day_and_kind()
    item_counts = catalog_selectors.item_event_counts()
    user_counts = catalog_selectors.user_event_counts()
    export = request.GET.get("export")
    if export == "events":
        return _csv("events-per-day", ["day", *kinds], [(d, *[kinds[k][i] for k in kinds]) for i, d in enumerate(days)])
    if export == "items":
        return _csv("item-popularity", ["rank", "events"], enumerate(sorted(item_counts, reverse=True), start=1))
    if export == "users":
        return _csv("user-activity", ["rank", "events"], enumerate(sorted(user_counts, reverse=True), start=1))
    scenarios = Scenario.objects.order_by("slug")
    if export == "slices":
        rows = [(s.slug, *(s.slice_stats.get(key) for key in ("users", "items", "events"))) for s in scenarios]
        return _csv("scenario-slices", ["scenario", "users", "items", "events"], rows)
    context = {
        "counts": catalog_selectors.catalog_counts(),
        "events_plot": figures.to_html(figures.events_per_day(days, kinds), element_id="events-plot") if days else None,
        "tail_plot": figures.to_html(
            figures.long_tail(item_counts, title="Item popularity (long tail)", x_title="item rank"),
            element_id="tail-plot",
        )
        if item_counts
        else None,
        "users_plot": figures.to_html(
            figures.histogram(user_counts, title="User activity", x_title="events per user", log_y=True),
            element_id="users-plot",
        )
        if user_counts
        else None,
        "slices_plot": figures.to_html(
            figures.bar_series(
                [s.slug for s in scenarios],
                [s.slice_stats.get("events", 0) for s in scenarios],
                title="Events in each scenario's slice",
                x_title="scenario",
                y_title="events",
            ),
            element_id="slices-plot",
        ),
        "scenarios": scenarios,
    }
    return render(request, "dashboards/data_overview.html", context)


def role_context(request: HttpRequest) -> dict:
    """Template context: the user's role name."""
    return {"role": user_role(request.user) if hasattr(request, "user") else None}
