"""The fault benchmark counts its ledger: faults, stuck runs, and acknowledged and lost events."""

import json

from benchmarks.reliability_faults import _count, _tally


def test_the_ledger_is_counted_by_kind(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    entries = [
        {"kind": "fault", "what": "worker killed"},
        {"kind": "fault", "what": "redis killed"},
        {"kind": "run", "id": 1, "status": "failed", "stuck": False},
        {"kind": "run", "id": 2, "status": "queued", "stuck": True},
        {"kind": "events", "acknowledged": 500, "lost": 3},
    ]
    ledger.write_text("".join(json.dumps(entry) + "\n" for entry in entries))

    counts = _count(ledger)

    assert (counts["faults_injected"], counts["runs_stuck"]) == (2, 1)
    assert (counts["events_acknowledged"], counts["events_lost"]) == (500, 3)


def test_the_pytest_summary_is_read():
    assert (_tally("7 passed, 1 failed in 12.3s", "passed"), _tally("7 passed, 1 failed", "failed")) == (7, 1)
    assert _tally("8 passed in 3s", "error") == 0
