from django import template

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
