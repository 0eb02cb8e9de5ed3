import numpy as np
import pytest

from training.evaluation.compare import align, bootstrap_interval, paired_test, ratio_interval


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


def test_ratio_interval_brackets_the_ratio_of_means_and_narrows_with_more_users():
    rng = np.random.default_rng(4)
    a = rng.random(3000)
    b = 0.9 * a + rng.normal(0, 0.02, 3000)
    small, large = ratio_interval(a[:40], b[:40]), ratio_interval(a, b)
    assert large.mean == pytest.approx(b.mean() / a.mean())
    assert small.low < small.mean < small.high and large.low < 0.9 < large.high
    assert (large.high - large.low) < (small.high - small.low) / 4


def test_ratio_interval_resamples_users_in_pairs():
    # b is exactly twice a user by user: every resample of the same users has ratio 2, whatever the spread of a.
    a = np.random.default_rng(5).random(50)
    interval = ratio_interval(a, 2 * a)
    assert interval.low == pytest.approx(2.0) and interval.high == pytest.approx(2.0)


def test_ratio_interval_refuses_a_zero_denominator_and_misaligned_users():
    with pytest.raises(ValueError, match="positive"):
        ratio_interval(np.zeros(5), np.ones(5))
    with pytest.raises(ValueError, match="aligned"):
        ratio_interval(np.ones(3), np.ones(4))
