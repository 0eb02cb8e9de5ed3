"""Plotly figures, built on the server from plain data.

Each builder returns a ``plotly.graph_objects.Figure``; :func:`to_html` renders it as a div for a
template (plotly.js itself is loaded once by the page from static files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go

from training.algorithms.distill import AGREEMENT
from training.evaluation.compare import Interval

LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "template": "plotly_white", "height": 360}
CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}


# Characters that could end a <script> element early, escaped as JSON allows (as Django's json_script does).
_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def to_html(figure: go.Figure, *, element_id: str) -> str:
    """A div for the figure and its data as a JSON script element, which static/js/plots.js draws: the
    Content-Security-Policy runs no inline script, so plotly's own ``to_html`` output would not run."""
    payload = f'{{"figure": {figure.to_json()}, "config": {json.dumps(CONFIG)}}}'.translate(_JSON_ESCAPES)
    return (
        f'<div id="{element_id}" class="plotly-graph-div"></div>'
        f'<script type="application/json" data-plotly-figure="{element_id}">{payload}</script>'
    )


def training_curve(history: Sequence[dict], kept_epoch: int | None = None) -> go.Figure:
    """Loss (left axis) and validation metrics, and a student's agreement with its teacher (right axis), per
    epoch; a dotted line marks the ``kept_epoch`` whose weights the model kept."""
    epochs = [entry.get("epoch") for entry in history]
    figure = go.Figure()
    if any("loss" in entry for entry in history):
        figure.add_trace(
            go.Scatter(x=epochs, y=[e.get("loss") for e in history], name="training loss", mode="lines+markers")
        )
    metrics = sorted({key for entry in history for key in entry if key not in ("phase", "epoch", "loss")})
    for name in metrics:
        # a model's own measure (a student's agreement with its teacher) is not read from the validation set
        label = name.replace("_", " ") if name == AGREEMENT else f"validation {name}"
        figure.add_trace(
            go.Scatter(x=epochs, y=[e.get(name) for e in history], name=label, yaxis="y2", mode="lines+markers")
        )
    if kept_epoch is not None:
        figure.add_vline(x=kept_epoch, line_dash="dot", line_color="#666", annotation_text=f"kept: epoch {kept_epoch}")
    figure.update_layout(
        **LAYOUT,
        title="Training curve",
        xaxis_title="epoch",
        xaxis={"tick0": 0, "dtick": whole_step(len(epochs))},
        yaxis_title="loss",
        yaxis2={"title": "validation", "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def whole_step(count: int) -> int:
    """A whole tick step showing about ten ticks (never half an epoch): 1, 2, 5, 10, 20, 50, …"""
    step = 1
    while count / step > 10:
        step = step * 5 // 2 if str(step).startswith("2") else step * 2
    return step


def metrics_by_k(metrics: dict, ks: Sequence[int]) -> go.Figure:
    names = ("precision", "recall", "ndcg", "map", "mrr", "hit")
    figure = go.Figure()
    for k in ks:
        figure.add_trace(go.Bar(name=f"@{k}", x=list(names), y=[metrics.get(f"{name}@{k}") for name in names]))
    figure.update_layout(**LAYOUT, title="Test metrics at each K", barmode="group", yaxis_title="mean over users")
    return figure


def comparison_bars(labels: Sequence[str], metrics: Sequence[str], intervals: dict[str, list[Interval]]) -> go.Figure:
    """Grouped bars: one group per metric, one bar per run, with 95% bootstrap intervals."""
    figure = go.Figure()
    for index, label in enumerate(labels):
        values = [intervals[m][index] for m in metrics]
        figure.add_trace(
            go.Bar(
                name=label,
                x=list(metrics),
                y=[v.mean for v in values],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [v.high - v.mean for v in values],
                    "arrayminus": [v.mean - v.low for v in values],
                },
            )
        )
    figure.update_layout(**LAYOUT, title="Metrics with 95% bootstrap intervals", barmode="group")
    return figure


def difference_histogram(differences: Sequence[float], label: str) -> go.Figure:
    figure = go.Figure(go.Histogram(x=list(differences), nbinsx=40, name="users"))
    figure.add_vline(x=0, line_dash="dash", line_color="#888")
    figure.update_layout(
        **LAYOUT, title=f"Per-user NDCG@10 difference ({label})", xaxis_title="difference", yaxis_title="users"
    )
    return figure


def metric_timeline(points, promotions, metric: str, changes=()) -> go.Figure:
    """Each succeeded run's ``metric`` against its finish time, a line per algorithm broken wherever the slice or
    split changed (``changes``, marked with dashed lines: the runs either side measure other things); promotions
    and rollbacks as dotted lines with a hoverable marker on top (labels written on the chart overlap when close)."""
    figure = go.Figure()
    by_algorithm: dict[str, list] = {}
    for point in points:
        by_algorithm.setdefault(point.algorithm, []).append(point)
    for algorithm, series in sorted(by_algorithm.items()):
        xs, ys, texts = _segmented(series)
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers+lines",
                name=algorithm,
                text=texts,
                connectgaps=False,
                hovertemplate="%{text}<br>%{y:.4f}<extra>%{fullData.name}</extra>",
            )
        )
    live = [p for p in points if p.is_live]
    if live:
        figure.add_trace(
            go.Scatter(
                x=[live[0].finished_at],
                y=[live[0].value],
                mode="markers",
                name="live",
                marker={"size": 16, "symbol": "star", "color": "#f59e0b"},
            )
        )
    _add_promotions(figure, promotions)
    _add_changes(figure, changes)
    figure.update_layout(
        **LAYOUT,
        title=f"{metric} of succeeded runs over time",
        yaxis={"title": metric, "range": [0, _top([p.value for p in points])], "rangemode": "tozero"},
        xaxis={
            "type": "date",
            "range": _time_range([p.finished_at for p in points] + [p.created_at for p in promotions]),
        },
    )
    return figure


def _segmented(series) -> tuple[list, list, list]:
    """The series' x, y and hover text with a gap (None) between runs of different segments."""
    xs: list = []
    ys: list = []
    texts: list = []
    for index, point in enumerate(series):
        if index and point.segment != series[index - 1].segment:
            xs.append(None)
            ys.append(None)
            texts.append("")
        xs.append(point.finished_at)
        ys.append(point.value)
        texts.append(f"run {point.run_id}" + (f" · {point.split}" if point.split else ""))
    return xs, ys, texts


def _add_changes(figure: go.Figure, changes) -> None:
    marked = [change for change in changes if change.at is not None]
    _add_marked_lines(
        figure,
        [change.at for change in marked],
        ["#7c3aed"] * len(marked),
        dash="dash",
        height=0.0,
        name="settings changed",
        marker={"symbol": "diamond", "size": 11, "color": "#7c3aed"},
        text=[f"from run {c.run_id}: " + "; ".join(c.changes) for c in marked],
        hovertemplate="%{text}<extra></extra>",
    )


def _add_promotions(figure: go.Figure, promotions) -> None:
    colours = [{"promote": "#16a34a"}.get(p.action, "#dc2626") for p in promotions]
    _add_marked_lines(
        figure,
        [p.created_at for p in promotions],
        colours,
        dash="dot",
        height=1.0,
        name="promotions",
        marker={"symbol": "triangle-down", "size": 11, "color": colours},
        text=[f"{p.action} run {p.run_id}" + (f" by {p.actor}" if p.actor else "") for p in promotions],
        hovertemplate="%{text}<br>%{x|%Y-%m-%d %H:%M}<extra></extra>",
    )


def _add_marked_lines(
    figure: go.Figure, moments: list, colours: list[str], *, dash: str, height: float, **markers: Any
) -> None:
    """A vertical line at each of ``moments`` and, at ``height`` of a hidden 0-1 axis, a hoverable marker on it
    (``markers``: the marker trace's name, style and text); labels written on the chart would overlap."""
    for moment, colour in zip(moments, colours, strict=True):
        figure.add_vline(x=moment.timestamp() * 1000, line_dash=dash, line_color=colour)
    if moments:
        figure.add_trace(go.Scatter(x=moments, y=[height] * len(moments), yaxis="y2", mode="markers", **markers))
        figure.update_layout(yaxis2={"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True})


def _top(values) -> float:
    """The top of a [0, top] axis: 10% above the highest value, 1 when there is none."""
    known = [value for value in values if value is not None]
    return max(known) * 1.1 if known and max(known) > 0 else 1.0


def _time_range(moments) -> list[datetime] | None:
    """The span of ``moments`` padded by 5%, and at least a day wide: a single run would otherwise be drawn on
    an axis of milliseconds."""
    if not moments:
        return None
    start, end = min(moments), max(moments)
    pad = max((end - start) * 0.05, (timedelta(days=1) - (end - start)) / 2)
    return [start - pad, end + pad]


def bar_series(x: Sequence, y: Sequence, *, title: str, x_title: str, y_title: str) -> go.Figure:
    figure = go.Figure(go.Bar(x=list(x), y=list(y)))
    figure.update_layout(**LAYOUT, title=title, xaxis_title=x_title, yaxis_title=y_title)
    return figure


def events_per_day(days: Sequence, kinds: Mapping[str, Sequence[int]]) -> go.Figure:
    figure = go.Figure()
    for kind, counts in sorted(kinds.items()):
        figure.add_trace(go.Bar(x=list(days), y=list(counts), name=kind))
    figure.update_layout(**LAYOUT, title="Events per day and kind", barmode="stack", yaxis_title="events")
    return figure


def long_tail(counts: Sequence[int], *, title: str, x_title: str) -> go.Figure:
    """Rank-frequency plot on log–log axes."""
    ordered = np.sort(np.asarray(counts))[::-1]
    figure = go.Figure(go.Scatter(x=np.arange(1, len(ordered) + 1), y=ordered, mode="lines"))
    figure.update_layout(
        **LAYOUT,
        title=title,
        xaxis=_log_axis([1, len(ordered)]),
        yaxis=_log_axis(ordered),
        xaxis_title=x_title,
        yaxis_title="events",
    )
    return figure


def histogram(values: Sequence[float], *, title: str, x_title: str, log_y: bool = False) -> go.Figure:
    """Counts of ``values`` in up to 50 bins; whole-number values (events per user) get whole-number ticks."""
    values = list(values)
    figure = go.Figure(go.Histogram(x=values, nbinsx=50))
    whole = bool(values) and all(float(value).is_integer() for value in values)
    x_axis = {"dtick": whole_step(int(max(values) - min(values)) + 1), "tickformat": ",d"} if whole else {}
    # No bin holds more than every value: the ticks are chosen for that range, plotly shows those inside its own.
    y_axis = _log_axis([1, len(values)]) if log_y else {}
    figure.update_layout(**LAYOUT, title=title, xaxis_title=x_title, yaxis_title="count", xaxis=x_axis, yaxis=y_axis)
    return figure


def _log_axis(values) -> dict:
    """A log axis labelled once a decade (1, 10, 100, …) when the data spans two decades or more, at 1, 2 and 5
    times each power of ten over one to two decades, and at every digit within less than one: plotly's default
    labels digits inside each decade however wide the range, which crowds."""
    positive = [value for value in values if value and value > 0]
    low, high = (min(positive), max(positive)) if positive else (1, 10)
    span = np.log10(high / low)
    if span >= 2:
        return {"type": "log", "dtick": 1, "tickformat": ",d"}
    if span < 1:
        return {"type": "log", "dtick": "D1"}
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    return {"type": "log", "tickvals": [m * 10**e for e in decades for m in (1, 2, 5)], "tickformat": ",d"}


def matrix_heatmap(row_labels, column_labels, values, deltas, states, metric: str = "ndcg@10") -> go.Figure:
    """Rows runs, columns member scenarios; cells ``metric`` with the change against the member's baseline (colour,
    current cells only); stale cells say so, n/a cells say "n/a"."""
    text = [
        [_matrix_text(value, delta, state) for value, delta, state in zip(row, delta_row, state_row, strict=True)]
        for row, delta_row, state_row in zip(values, deltas, states, strict=True)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=deltas,
            x=list(column_labels),
            y=list(row_labels),
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            zmid=0,
            colorbar={"title": f"Δ {metric}"},
            hoverongaps=False,
        )
    )
    figure.update_layout(
        **{**LAYOUT, "height": max(300, 60 + 40 * len(row_labels))},
        title=f"{metric} per member scenario (colour: change against the member's baseline)",
        yaxis={"autorange": "reversed"},
    )
    return figure


def _matrix_text(value: float | None, delta: float | None, state: str) -> str:
    if state == "n/a":
        return "n/a"
    if value is None:
        return ""
    text = f"{value:.3f}" + ("" if delta is None else f"<br>{delta:+.3f}")
    return text + "<br>stale" if state == "stale" else text


def quality_vs_cost(labels: Sequence[str], ndcg: Sequence[float], latency_ms: Sequence[float], parameters) -> go.Figure:
    """One point per run: NDCG@10 against serving latency, the marker's area growing with the parameter count."""
    sizes = [12 + 6 * np.log10(max(count, 1)) for count in parameters]
    figure = go.Figure(
        go.Scatter(
            x=list(latency_ms),
            y=list(ndcg),
            mode="markers+text",
            text=list(labels),
            textposition="top center",
            marker={"size": sizes},
            customdata=[f"{count:,}" for count in parameters],
            hovertemplate="%{text}<br>NDCG@10 %{y:.4f}<br>%{x:.2f} ms<br>%{customdata} parameters<extra></extra>",
        )
    )
    figure.update_layout(
        **LAYOUT, title="Quality against serving cost", xaxis_title="ms to rank every item for a batch of users",
        yaxis_title="test NDCG@10",
    )  # fmt: skip
    return figure
