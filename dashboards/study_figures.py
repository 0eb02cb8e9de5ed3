"""Figures of a hyperparameter study, drawn by Optuna's own Plotly builders over its finished trials."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go

from dashboards.figures import LAYOUT


def _styled(figure: go.Figure, title: str) -> go.Figure:
    figure.update_layout(**LAYOUT, title=title)
    return figure


def optimisation_history(study: optuna.Study, objective: str) -> go.Figure:
    """Each finished trial's validation objective and the best so far."""
    figure = optuna.visualization.plot_optimization_history(study, target_name=f"validation {objective}")
    return _styled(figure, f"Optimisation history (validation {objective})")


def parameter_importances(study: optuna.Study) -> go.Figure | None:
    """How much of the objective's variation each searched parameter explains (fANOVA); None below two
    finished trials, or when nothing was varied."""
    try:
        figure = optuna.visualization.plot_param_importances(study)
    except (RuntimeError, ValueError):
        return None
    return _styled(figure, "Parameter importances") if figure.data else None


def parallel_coordinates(study: optuna.Study, objective: str) -> go.Figure:
    """One line per finished trial across its parameters and its objective value."""
    figure = optuna.visualization.plot_parallel_coordinate(study, target_name=f"validation {objective}")
    return _styled(figure, "Parallel coordinates")
