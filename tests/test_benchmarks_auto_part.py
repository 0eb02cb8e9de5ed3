"""The auto part of ``benchmarks.tuning`` reports each data set's ratio and judges the smaller against the target,
and nothing before it ran."""

from benchmarks.tuning_parts import auto

FIGURES = {
    "auto_budget_minutes": 15.0,
    "auto_over_recbole_min": 1.02,
    "target_auto_over_recbole_min": 1.05,
    **{
        f"{name}_{key}{suffix}": value
        for key, ratio, winner in (("ml100k", 1.08, "ease"), ("mlsmall", 1.02, "ials"))
        for name, suffix, value in (
            ("auto", "_ndcg10", 0.3 * ratio),
            ("auto", "_winner", winner),
            ("recbole", "_ease_ndcg10", 0.3),
            ("recbole", "_best", "EASE"),
            ("auto_over_recbole", "", ratio),
        )
    },
}


def test_the_smaller_ratio_of_the_two_data_sets_is_judged():
    rows = list(auto.report_rows(FIGURES))

    assert [row[0].split(":")[0] for row in rows[:2]] == [
        "auto (15 min budget) on ml-100k",
        "auto (15 min budget) on ml-latest-small",
    ]
    assert rows[1][1] == "0.3060 (ials) against 0.3000 (EASE): 1.020×"
    assert rows[2] == (
        "auto over RecBole's best default baseline, the smallest ratio of ml-100k, ml-latest-small "
        "(`auto_over_recbole_min`)",
        "1.020×",
        "≥ 1.05×",
        False,
    )


def test_a_part_never_run_reports_nothing():
    assert list(auto.report_rows({})) == []
