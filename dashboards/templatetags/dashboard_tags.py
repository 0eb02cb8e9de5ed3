from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from training.algorithms.registry import UnknownAlgorithm, get_algorithm
from training.splits import split_label

register = template.Library()


@register.filter
def get_metric(metrics: dict | None, name: str):
    """``{{ run.metrics|get_metric:"ndcg@10" }}`` (metric names hold characters templates cannot address)."""
    return (metrics or {}).get(name)


@register.filter
def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def pvalue(value: float | None) -> str:
    """p-values: four decimals, or an upper bound when smaller than that shows."""
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def key(mapping: dict | None, name: str):
    """``{{ run.data_snapshot|key:"items" }}``: a dict's entry even where the key is also a dict method's name
    (``items``, ``values``), which Django's dot lookup would otherwise call."""
    return mapping.get(name) if isinstance(mapping, dict) else None


@register.filter
def count(value: int | float | None) -> str:
    """A count with thousands separators (``12,345``); zero stays ``0``, an unknown count is ``–``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:,.0f}"


def format_value(value: Any) -> str:
    """A hyperparameter's value as a reader writes it: ``250`` not ``250.0``, ``true`` not ``True``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@register.inclusion_tag("dashboards/_hyperparameters.html")
def hyperparameters(algorithm: str, params: dict | None) -> dict:
    """The algorithm and the hyperparameters that differ from its defaults; the full set in a collapsible."""
    rows = hyperparameter_rows(algorithm, params or {})
    return {
        "algorithm": algorithm,
        "changed": [row for row in rows if not row["is_default"]],
        "rows": rows,
    }


def hyperparameter_rows(algorithm: str, params: dict) -> list[dict]:
    """Every declared hyperparameter with its value (the stored one, else the default), plus any stored value
    the algorithm no longer declares (old runs keep what they were trained with)."""
    try:
        declared = get_algorithm(algorithm).params
    except UnknownAlgorithm:
        declared = ()
    rows = []
    for param in declared:
        value = params.get(param.name, param.default)
        rows.append({"name": param.name, "value": format_value(value), "is_default": value == param.default})
    known = {param.name for param in declared}
    rows += [
        {"name": name, "value": format_value(value), "is_default": False}
        for name, value in sorted(params.items())
        if name not in known
    ]
    return rows


@register.filter
def one_step(history: list | None) -> list[tuple[str, Any]] | None:
    """For a run trained in one step (EASE, item-kNN, popularity: no epochs), the figures of that step, to be
    written out instead of a one-dot curve; ``None`` for a run with epochs to plot."""
    if not history or len(history) != 1:
        return None
    # A blend's weights, and the better mix it did not take, are shown beside its members, not as validation figures.
    hidden = ("phase", "epoch")
    return [
        (n, v) for n, v in sorted(history[0].items()) if n not in hidden and not n.startswith(("weight_", "best_mix_"))
    ]


@register.filter
def moment(value: str | None) -> str:
    """An ISO timestamp stored in JSON (a data snapshot's first and last event) as ``2024-01-31 14:05 UTC``."""
    if not value:
        return "–"
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M") + (" UTC" if parsed.tzinfo is not None else "")


@register.filter
def ago(value: datetime | None) -> str:
    """How long ago ``value`` was (``3 hours, 5 minutes ago``); under a minute, or a clock slightly ahead, is
    ``just now`` where Django's ``timesince`` would say ``0 minutes``."""
    if value is None:
        return "–"
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def metric_value(value: Any) -> str:
    """A metric cell: four decimals for a rate, separators for a count, – when the run has none."""
    if value is None or isinstance(value, bool):
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 10):
        return f"{value:,.0f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@register.filter
def param_value(value: Any) -> str:
    """A hyperparameter cell as a reader writes it; – when the run's algorithm has no such hyperparameter."""
    return "–" if value is None else format_value(value)


@register.filter
def entries(mapping: dict | None) -> list[tuple[str, Any]]:
    """A dict's (key, value) pairs, safe where a key is also a dict method's name (``items``)."""
    return list(mapping.items()) if isinstance(mapping, dict) else []


@register.filter(name="split_label")
def split_label_filter(split: dict | None) -> str:
    """A run's recorded split in words (``random 80/10/10 · seed 42 · data 1a2b3c4d · of movies``)."""
    return split_label(split or {})
