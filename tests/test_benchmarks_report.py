"""docs/benchmarks.md is generated from the results files: a row shows its figure, target, whether it is met and the
command that reproduces it, and the committed doc is what the committed results give."""

import json
import shutil

import pytest

from benchmarks import report
from benchmarks.results_io import RESULTS


@pytest.fixture
def results(tmp_path):
    for name in report.COMMANDS:
        if name in report.IN_PARTS and not (RESULTS / f"{name}.json").exists():
            continue
        shutil.copy(RESULTS / f"{name}.json", tmp_path / f"{name}.json")
    return tmp_path


def test_the_committed_doc_is_what_the_committed_results_give():
    current = report.DOC.read_text()

    assert report.document(report.results_load(), current) == current


def test_a_missed_target_is_shown_as_not_met(results):
    path = results / "ingest.json"
    figures = json.loads(path.read_text())
    path.write_text(json.dumps({**figures, "endpoint_to_copy_ratio": 0.1}))

    text = report.generated(report.results_load(results))

    row = next(line for line in text.splitlines() if line.startswith("| bulk endpoint"))
    assert "10.0%" in row and "**no**" in row and "`.venv/bin/python -m benchmarks.ingest`" in row


def test_a_missing_results_file_is_an_error_not_a_shorter_doc(results):
    (results / "pages.json").unlink()

    with pytest.raises(FileNotFoundError, match="pages"):
        report.results_load(results)


def test_the_text_outside_the_markers_is_kept():
    current = "# Benchmarks\n\nA hand-written intro.\n\n" + report.BEGIN + "\nold\n" + report.END + "\n"

    text = report.document(report.results_load(), current)

    assert text.startswith("# Benchmarks\n\nA hand-written intro.\n\n" + report.BEGIN)
    assert "\nold\n" not in text and text.endswith(report.END + "\n")


def test_recbole_figures_read_back_from_an_earlier_run_are_dated_in_the_rows(results):
    path = results / "recbole_sequential.json"
    figures = json.loads(path.read_text())
    reread = {"recbole_figures_measured_at": "2026-11-24T19:25:55+00:00", "sasrec_seconds_to_best_ratio": 1.17}
    path.write_text(json.dumps({**figures, **reread, "load_average_before": 8.5, "load_average_after": 7.1}))

    text = report.generated(report.results_load(results))

    rows = [line for line in text.splitlines() if "benchmarks.recbole_sequential" in line]
    assert len(rows) == 4 and all("÷ RecBole's (its run of 2026-11-24)" in row for row in rows)
    time_row = next(row for row in rows if row.startswith("| sasrec time to best epoch"))
    assert "load average 8.5 and 7.1" in time_row and "not judged" in time_row
    assert "| 1.170 | ≤ 0.2 | – |" in time_row  # across two runs the time target is neither met nor missed
