"""The ratings part of ``benchmarks.tuning`` judges RMSE and fit time against Surprise's, and reports nothing
before it ran."""

import argparse

import pytest

from benchmarks.tuning_parts import ratings


def test_figures_are_means_over_the_folds_and_ratios_to_surprise():
    ours = [{"rmse": 0.90, "mae": 0.70, "fit_seconds": 1.0}, {"rmse": 0.92, "mae": 0.72, "fit_seconds": 3.0}]
    theirs = [{"rmse": 0.95, "mae": 0.75, "fit_seconds": 4.0}, {"rmse": 0.93, "mae": 0.73, "fit_seconds": 4.0}]

    figures = ratings._figures(ours, theirs, argparse.Namespace(ratings_threads=1))

    assert figures["biased_mf_rmse"] == pytest.approx(0.91) and figures["surprise_svd_rmse"] == pytest.approx(0.94)
    assert figures["rmse_over_surprise"] == pytest.approx(round(0.91 / 0.94, 4))
    assert figures["mae_over_surprise"] == pytest.approx(round(0.71 / 0.74, 4))
    assert figures["fit_time_over_surprise"] == 0.5
    assert figures["target_rmse_over_surprise"] == figures["target_fit_time_over_surprise"] == 1.0


def test_a_higher_rmse_than_surprise_misses_the_target_and_a_faster_fit_meets_its_own():
    figures = ratings._figures(
        [{"rmse": 0.96, "mae": 0.75, "fit_seconds": 1.0}],
        [{"rmse": 0.94, "mae": 0.74, "fit_seconds": 2.0}],
        argparse.Namespace(ratings_threads=1),
    )

    rows = list(ratings.report_rows(figures))

    assert rows[0][1:] == ("1.021× (0.9600 vs 0.9400)", "≤ 1×", False)
    assert rows[2][1:] == ("0.500× (1.00 s vs 2.00 s)", "≤ 1×", True)


def test_a_part_never_run_reports_nothing():
    assert list(ratings.report_rows({})) == []
