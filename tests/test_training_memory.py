"""A fit too large for its worker's memory fails at once and says why, before it starts, instead of the worker
being killed part-way; the dense item × item models say what they need."""

from pathlib import Path

import pytest
import torch

from tests.factories import clustered_catalog, scenario
from training.algorithms.adapted_ease import AdaptedEASE
from training.algorithms.ease import EASE
from training.algorithms.popularity import Popularity
from training.algorithms.sasrec import SASRec
from training.memory import control_group_room, memory_available
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute


def test_the_dense_item_models_need_the_square_of_the_catalogue():
    assert EASE({}).memory_needed(1000, 30_000) == 32 * 30_000**2  # about 27 GiB
    assert AdaptedEASE({}).memory_needed(40_000, 30_000) == 56 * 30_000**2  # solved in the items' space
    assert AdaptedEASE({}).memory_needed(600, 9000) == 32 * 9000**2 + 32 * 600**2 + 16 * 600 * 9000
    assert Popularity({}).memory_needed(10**6, 10**6) is None


def test_the_full_softmax_needs_every_items_logits_at_every_position_of_a_batch():
    assert SASRec({}).memory_needed(10, 99_999) == 10 * 256 * 50 * 100_000  # about 12 GiB at the defaults
    assert SASRec({"batch_size": 32, "max_length": 20}).memory_needed(10, 999) == 10 * 32 * 20 * 1000
    assert SASRec({"loss": "sampled"}).memory_needed(10, 10**6) is None


def test_a_worker_on_the_cpu_has_the_memory_its_system_says_is_available():
    total = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line[:9] == "MemTotal:"
    )
    assert 0 < memory_available(torch.device("cpu")) <= total


def test_a_containers_room_is_its_limit_less_what_it_uses_beyond_reclaimable_cache(tmp_path):
    assert control_group_room(tmp_path) is None  # no control group files: no limit known
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("5000\n")
    (tmp_path / "memory.stat").write_text("anon 3000\ninactive_file 1500\nactive_file 500\n")
    assert control_group_room(tmp_path) is None  # v2 without a limit
    (tmp_path / "memory.max").write_text("8000\n")
    assert control_group_room(tmp_path) == 8000 - (5000 - 1500)
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("10000\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("12000\n")
    (v1 / "memory" / "memory.stat").write_text("total_inactive_file 1000\n")
    assert control_group_room(v1) == 0  # over its limit: no room


@pytest.mark.django_db
def test_a_run_too_large_for_its_worker_fails_before_fitting_and_says_what_to_change(settings):
    clustered_catalog(users=60, items=300, per_user=10)
    movies = scenario(algorithm="ease")
    settings.RECSYS_TRAINING_MEMORY_MB = 1  # EASE on some 250 items needs about 2 MiB

    ease = training_run_create(scenario=movies)
    popularity = training_run_create(scenario=movies, algorithm="popularity", params={})
    statuses = [training_run_execute(run_id=run.pk, device="cpu") for run in (ease, popularity)]

    ease.refresh_from_db()
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert ease.error.startswith("too large for this worker: EASE on ")
    assert "needs about 2 MiB of memory at its peak, and this worker has 1 MiB" in ease.error
    assert "minimum events per item" in ease.error and "iALS" in ease.error
    assert ease.history == [] and not ease.artifact_path  # stopped before the fit
    settings.RECSYS_TRAINING_MEMORY_MB = 0
    again = training_run_create(scenario=movies)
    assert training_run_execute(run_id=again.pk, device="cpu") == RunStatus.SUCCEEDED
    assert TrainingRun.objects.get(pk=again.pk).metrics["ndcg@10"] > 0


@pytest.mark.django_db
def test_a_sequential_run_too_large_says_what_lowers_its_peak(settings):
    clustered_catalog(users=60, items=300, per_user=10)
    movies = scenario(algorithm="sasrec", hyperparameters={"epochs": 1, "max_length": 10})
    settings.RECSYS_TRAINING_MEMORY_MB = 1  # the full softmax: 10 × 256 × 10 × some 250 items, about 6 MiB

    softmax = training_run_create(scenario=movies)
    sampled = training_run_create(scenario=movies, params={"epochs": 1, "max_length": 10, "loss": "sampled"})
    statuses = [training_run_execute(run_id=run.pk, device="cpu") for run in (softmax, sampled)]

    softmax.refresh_from_db()
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert softmax.error.startswith("too large for this worker: SASRec (Transformer) on ")
    assert softmax.error.endswith("or lower batch_size or max_length, or set loss to sampled")
