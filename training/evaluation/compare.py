"""Comparing runs on the same users: bootstrap confidence intervals and paired significance tests.

Pure NumPy/SciPy; inputs are per-user metric vectors aligned on the same users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedTest:
    """B minus A on the same users. ``p_value`` is the two-sided paired t-test; ``wilcoxon_p`` its rank twin."""

    mean_difference: float
    interval: Interval
    p_value: float
    wilcoxon_p: float
    n_users: int

    @property
    def better(self) -> str | None:
        """``"a"``, ``"b"``, or ``None`` when the difference is not significant at 5%."""
        if not self.p_value < 0.05 or self.mean_difference == 0:
            return None
        return "b" if self.mean_difference > 0 else "a"


@dataclass(frozen=True)
class Lead:
    """How far B leads A on the same users: the mean paired difference and its standard error."""

    mean_difference: float
    standard_error: float
    n_users: int

    def beyond(self, errors: float) -> bool:
        """Whether the lead is more than ``errors`` standard errors."""
        return self.mean_difference > errors * self.standard_error


def noise_bound(rivals: int) -> float:
    """In standard errors, how far the best of ``rivals`` leads can reach by noise alone: √(2 ln n), which bounds
    the expected largest of n independent standard normal draws; never under one standard error (the
    one-standard-error rule, for a single rival)."""
    return max(1.0, math.sqrt(2.0 * math.log(max(rivals, 1))))


def paired_lead(a: np.ndarray, b: np.ndarray) -> Lead:
    """B minus A over the same users (``(n,)`` each, in one order): mean and standard error (sample deviation
    over the square root of n) of the per-user differences."""
    a, b = _pair(a, b)
    difference = b - a
    return Lead(float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(a))), len(a))


def pooled_lead(a: np.ndarray, b: np.ndarray, counts: np.ndarray) -> Lead:
    """B minus A per rating, where each user's entry of ``a`` and ``b`` is a sum over its ``counts`` ratings (of
    an error, say; ``(n,)`` each, in one order): the difference of the two means over every rating,
    Σ(b − a) / Σ counts, and its standard error with each user's ratings taken together, as they are not
    independent: √(n / (n − 1) · Σ_u (d_u − lead · counts_u)²) / Σ counts."""
    a, b = _pair(a, b)
    counts = _vector(counts)
    if counts.shape != a.shape or (counts <= 0).any():
        raise ValueError("every user needs a positive count of ratings, one per entry")
    difference, total = b - a, float(counts.sum())
    lead = float(difference.sum() / total)
    spread = float(np.sum(np.square(difference - lead * counts)))
    return Lead(lead, float(np.sqrt(len(a) / (len(a) - 1) * spread) / total), len(a))


def bootstrap_interval(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` ``(n,)``."""
    values = _vector(values)
    samples = _resamples(len(values), confidence, resamples, seed)
    return _percentile_interval(float(values.mean()), values[samples].mean(axis=1), confidence)


def ratio_interval(
    a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Interval:
    """Paired percentile bootstrap interval of ``mean(b) / mean(a)`` over the same users (``(n,)`` each, in one
    order): how sure a relative figure such as "the student keeps 92% of the teacher's NDCG" is."""
    a, b = _pair(a, b)
    if not a.mean() > 0:
        raise ValueError("the mean of a must be positive to divide by it")
    samples = _resamples(len(a), confidence, resamples, seed)
    denominators = a[samples].mean(axis=1)
    ratios = b[samples].mean(axis=1) / np.where(denominators > 0, denominators, np.nan)  # nan: all-zero resample
    return _percentile_interval(float(b.mean() / a.mean()), ratios, confidence)


def paired_test(a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> PairedTest:
    """Paired comparison of two ``(n,)`` vectors measured on the same users in the same order."""
    a, b = _pair(a, b)
    difference = b - a
    if np.allclose(difference, 0):
        return PairedTest(0.0, Interval(0.0, 0.0, 0.0), 1.0, 1.0, len(a))
    t_p = float(stats.ttest_rel(b, a).pvalue)
    wilcoxon_p = float(stats.wilcoxon(difference, zero_method="zsplit").pvalue)
    return PairedTest(
        mean_difference=float(difference.mean()),
        interval=bootstrap_interval(difference, resamples=resamples, seed=seed),
        p_value=t_p,
        wilcoxon_p=wilcoxon_p,
        n_users=len(a),
    )


def align(user_ids_a: list[int], values_a: list[float], user_ids_b: list[int], values_b: list[float]):
    """The two vectors restricted to the users both runs evaluated, in one order."""
    position_b = {user: index for index, user in enumerate(user_ids_b)}
    pairs = [(values_a[i], values_b[position_b[user]]) for i, user in enumerate(user_ids_a) if user in position_b]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    left, right = zip(*pairs, strict=True)
    return np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)


def _resamples(n: int, confidence: float, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` indexes drawn with replacement, after checking ``confidence``."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentile_interval(mean: float, statistics: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(statistics, [tail, 100 - tail])
    return Interval(mean=mean, low=float(low), high=float(high))


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(a), _vector(b)
    if a.shape != b.shape:
        raise ValueError(f"vectors must be aligned on the same users: {a.shape} vs {b.shape}")
    return a, b


def _vector(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError("need a 1-D vector of at least 2 values")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    return values
