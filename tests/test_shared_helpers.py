"""Helpers that replaced copies of the same logic: each behaves as every former copy did."""

import numpy as np
import pytest
import torch

from recsys_site.errors import without_server_paths
from scenarios.selectors import events_time_range
from training.algorithms.bpr import BPR
from training.algorithms.ials import IALS
from training.algorithms.params import Param
from training.interactions import InteractionData
from training.tasks import worker_device


def _data(users, items) -> InteractionData:
    n = len(users)
    return InteractionData(
        n_users=4,
        n_items=3,
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        weights=np.ones(n, dtype=np.float32),
        timestamps=np.arange(n, dtype=np.int64),
    )


def test_item_popularity_counts_distinct_users_not_events():
    data = _data([0, 0, 0, 1, 2], [1, 1, 1, 1, 0])

    assert data.distinct_users_per_item().tolist() == [1, 2, 0]


def test_the_events_time_range_is_iso_utc_and_none_when_empty():
    assert events_time_range(np.asarray([86400, 0, 3600])) == {
        "first_event_at": "1970-01-01T00:00:00+00:00",
        "last_event_at": "1970-01-02T00:00:00+00:00",
    }
    assert events_time_range(np.zeros(0, dtype=np.int64)) == {"first_event_at": None, "last_event_at": None}


@pytest.mark.parametrize(
    ("algorithm", "default", "maximum", "steps"), [(BPR, 10, 1000, "Epochs"), (IALS, 3, 100, "Iterations")]
)
def test_bpr_and_ials_declare_their_patience_as_before(algorithm, default, maximum, steps):
    [patience] = [param for param in algorithm.params if param.name == "early_stopping_patience"]

    assert (patience.kind, patience.default, patience.minimum, patience.maximum) == (int, default, 1, maximum)
    assert patience.help == f"{steps} without a better validation NDCG@10 before stopping."


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [(bool, "Yes", True), (bool, False, False), (int, 4.0, 4), (int, " 7 ", 7), (float, "2.5", 2.5), (float, 3, 3.0)],
)
def test_a_parameter_coerces_what_forms_and_the_api_send(kind, given, expected):
    assert Param("p", kind, expected).clean(given) == expected


@pytest.mark.parametrize(
    ("kind", "given", "message"),
    [
        (bool, "maybe", "true or false"),
        (int, True, "an integer"),
        (int, 2.5, "an integer"),
        (float, False, "a number"),
        (float, "nan", "finite"),
        (float, 10**400, "finite"),
        (float, "1e400", "finite"),
        (float, [1], "a number"),
        (str, 3, "a string"),
    ],
)
def test_a_parameter_refuses_what_it_cannot_coerce(kind, given, message):
    default = {bool: False, int: 0, float: 0.0, str: ""}[kind]

    with pytest.raises(ValueError, match=message):
        Param("p", kind, default).clean(given)


def test_the_gpu_queue_without_cuda_fails_a_run_but_not_an_embedding_refresh():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        worker_device("gpu", cuda_required=True)
    assert worker_device("gpu", cuda_required=False) == "cpu"
    assert worker_device("cpu", cuda_required=True) == "cpu"


def test_server_paths_are_shortened_to_their_last_name_and_nothing_else_changes():
    text = "OSError: [Errno 28] No space left on device: '/srv/recsys/var/artifacts/movies/run-4/model.safetensors'"
    assert without_server_paths(text) == "OSError: [Errno 28] No space left on device: '…/model.safetensors'"
    kept = "see https://example.com/a/b, 3/4 of the users, and and/or"
    assert without_server_paths(kept) == kept
    assert without_server_paths("cannot open /tmp/x") == "cannot open …/x"
