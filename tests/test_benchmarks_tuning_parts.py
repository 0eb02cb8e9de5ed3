"""The tuning and blend parts of ``benchmarks.tuning`` report their figures against their targets, and nothing
before they ran."""

from benchmarks.tuning_parts import blend, tuning

TUNING = {
    "tuning_budget_minutes": 15.0,
    "tuned_over_default_min": 1.01,
    "target_tuned_over_default_min": 1.05,
    **{
        f"{key}_{name}": value
        for key, ratio in (("ml_100k", 1.06), ("ml_latest_small", 1.01))
        for name, value in (
            ("tuned_over_default", ratio),
            ("tuned_test_ndcg_at_10", 0.3),
            ("best_default_test_ndcg_at_10", 0.3 / ratio),
            ("trials", 20),
            ("trials_pruned", 4),
            ("epochs_saved_by_pruning", 30),
        )
    },
}


def test_each_data_set_is_judged_against_the_target_on_its_own():
    rows = list(tuning.report_rows(TUNING))

    ratios = [row for row in rows if row[0].endswith("test NDCG@10 (15 min study)")]
    assert [(row[0].split(":")[0], row[3]) for row in ratios] == [("ml-100k", True), ("ml-latest-small", False)]
    assert ratios[1][1].startswith("1.010×") and ratios[1][2] == "≥ 1.05×"
    assert ("ml-100k: trials run, pruned, epochs saved by pruning", "20, 4, 30", "", None) in rows


def test_a_blend_below_its_best_member_misses_the_target():
    figures = {
        "blend_pairs": 6,
        "blend_over_best_member": 0.96,
        "target_blend_over_best_member": 1.02,
        "blend_test_ndcg_at_10": 0.24,
        "blend_best_member_test_ndcg_at_10": 0.25,
        "blend_over_best_member_highest_of_pairs": 1.06,
    }

    first = next(blend.report_rows(figures))

    assert first[1:] == ("0.960× (0.2400 vs 0.2500)", "≥ 1.02×", False)


def test_parts_never_run_report_nothing():
    assert list(tuning.report_rows({})) == [] and list(blend.report_rows({})) == []
