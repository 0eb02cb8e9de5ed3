"""The sequential RecBole comparison can re-measure our side alone, reading RecBole's figures back from an earlier
results file, and refuses a file from another RecBole setup rather than pair mismatched figures."""

import argparse
import json
from types import SimpleNamespace

import pytest

from benchmarks import recbole_sequential
from benchmarks.results_io import RESULTS

ARGS = argparse.Namespace(sasrec_epochs=10, gru4rec_epochs=10, stopping_step=3)


@pytest.fixture
def previous():
    return json.loads((RESULTS / "recbole_sequential.json").read_text())


def fresh_split_run(previous):
    """What run_recbole.py --split-only reports, and the split's size, for the same setup as ``previous``."""
    fresh = {"recbole_version": previous["recbole_version"], "n_users": previous["n_users"], "models": {}}
    fresh["n_items"] = previous["n_items"]
    return fresh, SimpleNamespace(train=SimpleNamespace(n_events=previous["n_train_events"]))


def test_recbole_figures_read_back_are_the_files_and_dated(previous):
    fresh, split = fresh_split_run(previous)

    recbole = recbole_sequential.recbole_from_results(previous, fresh, split, ARGS)

    sasrec = recbole["models"]["SASRec"]
    assert sasrec["test"]["ndcg@10"] == previous["sasrec_ndcg10_recbole"]
    assert sasrec["seconds_to_best"] == previous["sasrec_seconds_to_best_recbole"]
    assert sasrec["best_epoch"] == previous["sasrec_best_epoch_recbole"]
    assert recbole["models"]["GRU4Rec"]["valid"]["ndcg@10"] == previous["gru4rec_valid_ndcg10_recbole"]
    assert recbole["measured_at"] == (previous.get("recbole_figures_measured_at") or previous["measured_at"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda args, fresh, split: setattr(args, "stopping_step", 10), "recbole_stopping_step"),
        (lambda args, fresh, split: setattr(args, "sasrec_epochs", 20), "sasrec_max_epochs_recbole"),
        (lambda args, fresh, split: fresh.update(n_items=1000), "n_items"),
        (lambda args, fresh, split: setattr(split.train, "n_events", 5), "n_train_events"),
    ],
)
def test_a_results_file_from_another_setup_is_refused(previous, change, named):
    fresh, split = fresh_split_run(previous)
    args = argparse.Namespace(**vars(ARGS))
    change(args, fresh, split)

    with pytest.raises(SystemExit, match=named):
        recbole_sequential.recbole_from_results(previous, fresh, split, args)
