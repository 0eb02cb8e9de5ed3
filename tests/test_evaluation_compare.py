import numpy as np
import pytest

from training.evaluation.compare import align, bootstrap_interval, paired_test


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_users():
    rng = np.random.default_rng(1)
    small = bootstrap_interval(rng.random(30))
    large = bootstrap_interval(rng.random(3000))
    assert small.low < small.mean < small.high
    assert (large.high - large.low) < (small.high - small.low) / 4


def test_bootstrap_of_a_constant_is_that_constant():
    interval = bootstrap_interval(np.full(10, 0.25))
    assert (interval.low, interval.mean, interval.high) == (0.25, 0.25, 0.25)


def test_a_clear_paired_improvement_is_significant_and_names_b():
    rng = np.random.default_rng(2)
    a = rng.random(200)
    b = a + 0.05 + rng.normal(0, 0.01, 200)  # same users, consistently better
    result = paired_test(a, b)
    assert result.p_value < 1e-6 and result.better == "b"
    assert result.interval.low > 0 and abs(result.mean_difference - 0.05) < 0.01


def test_noise_is_not_significant():
    rng = np.random.default_rng(3)
    a = rng.random(100)
    b = a + rng.normal(0, 0.05, 100)
    result = paired_test(a, b)
    assert result.p_value > 0.05 and result.better is None and result.interval.low < 0 < result.interval.high


def test_identical_runs_have_p_one():
    a = np.array([0.1, 0.5, 0.3])
    assert paired_test(a, a.copy()).p_value == 1.0


def test_misaligned_vectors_are_refused():
    with pytest.raises(ValueError, match="aligned"):
        paired_test(np.zeros(3), np.zeros(4))


def test_align_keeps_common_users_in_order():
    a, b = align([1, 2, 3], [0.1, 0.2, 0.3], [3, 1], [0.9, 0.7])
    assert a.tolist() == [0.1, 0.3] and b.tolist() == [0.7, 0.9]
