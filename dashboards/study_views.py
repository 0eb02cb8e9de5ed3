"""Pages of hyperparameter studies: start one from a scenario, follow it, cancel it, promote its best trial."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboards import study_figures
from dashboards.exports import csv_response
from dashboards.figures import to_html
from dashboards.forms import StudyForm
from dashboards.views import EDIT, needs
from recsys_site.errors import DomainError, error_text
from scenarios.models import Scenario
from training.evaluation.objectives import objective_lower_is_better
from training.models import Study
from training.tuning import selectors
from training.tuning.studies import study_cancel, study_create, study_promote_best

STUDY_VIEW = "training.view_study"
STUDY_ADD = "training.add_study"
STUDY_CHANGE = "training.change_study"


@require_POST
@needs(STUDY_ADD)
def study_start(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = get_object_or_404(Scenario, slug=slug)
    form = StudyForm(request.POST, scenario=scenario)
    if not form.is_valid():
        messages.error(
            request, "Study refused: " + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items())
        )
        return redirect("dashboards:scenario-detail", slug=slug)
    data = form.cleaned_data
    try:
        study = study_create(
            scenario=scenario,
            algorithms=data["algorithms"],
            objective=data["objective"] or None,
            max_trials=data["max_trials"],
            max_seconds=data["max_minutes"] * 60 if data["max_minutes"] else None,
            created_by=request.user,
        )
    except DomainError as error:
        messages.error(request, f"Study refused: {error_text(error)}")
        return redirect("dashboards:scenario-detail", slug=slug)
    messages.success(request, f"Study {study.pk} started.")
    return redirect("dashboards:study-detail", pk=study.pk)


@needs(STUDY_VIEW)
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("scenario", "best_run", "created_by"), pk=pk)
    trials = selectors.study_trials(study=study)
    if request.GET.get("export") == "trials":
        return _trials_csv(study, trials)
    rebuilt = selectors.study_finished_optuna(study=study, trials=trials)
    has_figures = selectors.study_has_figures(rebuilt)
    importances = study_figures.parameter_importances(rebuilt) if has_figures else None
    if request.GET.get("export") == "importances":
        rows = study_figures.importance_rows(importances) if importances is not None else []
        return csv_response(f"study-{pk}-importances", ["parameter", "importance"], rows)
    figures = {}
    if has_figures:
        figures["history"] = to_html(study_figures.optimisation_history(rebuilt, study.objective), element_id="history")
        figures["slices"] = to_html(study_figures.slices(rebuilt, study.objective), element_id="slices")
        if importances is not None:
            figures["importances"] = to_html(importances, element_id="importances")
    context = {
        "study": study,
        "trials": trials,
        "summary": selectors.study_summary(study=study, trials=trials),
        "figures": figures,
        "minimised": objective_lower_is_better(study.objective),
        "is_live": study.best_run_id is not None and study.scenario.live_run_id == study.best_run_id,
    }
    return render(request, "dashboards/study_detail.html", context)


def _trials_csv(study: Study, trials: list) -> HttpResponse:
    """A row per trial: its number, run, algorithm, status, validation objective and searched values."""
    searched = sorted({name for space in study.search_space.values() for name in space})
    header = ["trial", "run", "algorithm", "status", f"validation {study.objective}", *searched]
    rows = [
        [
            run.trial_number,
            run.pk,
            run.algorithm,
            run.status,
            run.validation_metrics.get(study.objective),
            *(run.params.get(name) if name in study.search_space.get(run.algorithm, {}) else None for name in searched),
        ]
        for run in trials
    ]
    return csv_response(f"study-{study.pk}-trials", header, rows)


@require_POST
@needs(STUDY_CHANGE)
def study_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        study_cancel(study=get_object_or_404(Study, pk=pk))
        messages.success(request, f"Study {pk} cancelled; its running trials stop at their next epoch.")
    except DomainError as error:
        messages.error(request, error_text(error))
    return redirect("dashboards:study-detail", pk=pk)


@require_POST
@needs(EDIT)
def study_promote_page(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    reason = request.POST.get("reason", "").strip()[:500]
    if not reason:
        messages.error(request, "Nothing was promoted: give a reason (it is kept in the scenario's history).")
        return redirect("dashboards:study-detail", pk=pk)
    try:
        promotion = study_promote_best(
            study=study, actor=request.user, force=request.POST.get("force") == "1", reason=reason
        )
        messages.success(request, f"Run {promotion.run_id} is now live for {study.scenario.slug}.")
    except DomainError as error:
        messages.error(request, error_text(error))
    return redirect("dashboards:study-detail", pk=pk)
