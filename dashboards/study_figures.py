"""Figures of a hyperparameter study, drawn by Optuna's own Plotly builders over its finished trials. Each is made
of cartesian traces only: the pages load plotly.js's cartesian bundle."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
from optuna.importance import FanovaImportanceEvaluator

from dashboards.figures import LAYOUT, whole_step


def _styled(figure: go.Figure, title: str) -> go.Figure:
    # Optuna fixes some widths (300 px a parameter for the slices): the page's width is the one to fill.
    figure.update_layout(**LAYOUT, title=title, width=None, autosize=True)
    return figure


def optimisation_history(study: optuna.Study, objective: str) -> go.Figure:
    """Each finished trial's validation objective and the best so far."""
    figure = optuna.visualization.plot_optimization_history(study, target_name=f"validation {objective}")
    figure.update_xaxes(tick0=0, dtick=whole_step(len(study.trials)))  # trials are counted, never halved
    return _styled(figure, f"Optimisation history (validation {objective})")


def parameter_importances(study: optuna.Study) -> go.Figure | None:
    """How much of the objective's variation each searched parameter explains (fANOVA, seeded so that the page
    and its CSV agree); None below two finished trials, or when nothing was varied."""
    try:
        figure = optuna.visualization.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError):
        return None
    return _styled(figure, "Parameter importances") if figure.data else None


def importance_rows(figure: go.Figure) -> list[tuple[str, float]]:
    """The (parameter, importance) pairs ``figure`` draws, most important first."""
    bars = figure.data[0]
    return sorted(zip(bars.y, bars.x, strict=True), key=lambda row: -row[1])


def slices(study: optuna.Study, objective: str) -> go.Figure:
    """The validation objective against each searched parameter's value, one dot per finished trial."""
    figure = optuna.visualization.plot_slice(study, target_name=f"validation {objective}")
    return _styled(figure, f"Validation {objective} by parameter value")
