"""Item text embeddings (the bundled sentence encoder, the refresh, the job) and the content recommender.

The encoder is loaded once for the module (it takes seconds), inside a guard that fails any
network connection that is not to the loopback interface: it must load from the installed package.
"""

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from django.core.management import call_command

from catalog.models import EndUser, Item, ItemEmbedding
from catalog.services import EventRow, ItemRow, interactions_ingest, items_upsert
from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import START, clustered_catalog, scenario
from training.algorithms.registry import get_algorithm
from training.content import ENCODER_NAME, TextEncoder, item_text, text_hash
from training.data import item_features_attach, needs_item_features, protocol_split, training_data_load
from training.embeddings_service import item_embedding_matrix, item_embeddings_refresh
from training.interactions import InteractionData
from training.models import EmbeddingJob, RunStatus, TrainingRun
from training.services import training_run_create

SCIENCE_FICTION = ["The Matrix (1999)", "The Matrix Reloaded (2003)", "Terminator 2: Judgment Day (1991)"]
FAMILY = ["Toy Story (1995)", "Finding Nemo (2003)", "The Lion King (1994)"]
COLD_SEQUEL = "The Matrix Revolutions (2003)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def no_network() -> Iterator[list]:
    """Refuse (and record) every Python-level connection or name lookup that leaves this machine."""
    attempts: list = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def refuse(target) -> None:
        attempts.append(target)
        raise OSError(f"network use during an offline test: {target!r}")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_loopback(str(host)):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts


@pytest.fixture(scope="module")
def offline_load() -> tuple[TextEncoder, list]:
    """The process's shared CPU encoder, freshly loaded with the network refused; and any attempts made."""
    TextEncoder._instances.clear()  # load it here, under the guard, even if an earlier module loaded it
    with no_network() as attempts:
        encoder = TextEncoder.shared("cpu")
    return encoder, attempts


@pytest.fixture(scope="module")
def encoder(offline_load) -> TextEncoder:
    return offline_load[0]


def test_the_encoder_loads_offline_and_returns_384_dimension_unit_vectors(offline_load):
    encoder, attempts = offline_load
    assert attempts == []
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.is_offline_mode()

    vectors = encoder.encode(["The Matrix (1999)", "Toy Story (1995)", "Heat (1995)"], batch_size=2)

    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_an_empty_text_gets_the_zero_vector_and_progress_is_reported_per_batch(encoder):
    reports: list[tuple[int, int]] = []
    vectors = encoder.encode(
        ["", "Heat (1995)", "   ", "Casino (1995)", "Fargo (1996)"], batch_size=2, progress=lambda *r: reports.append(r)
    )
    assert not vectors[0].any() and not vectors[2].any()
    assert reports == [(2, 3), (3, 3)]


def test_near_identical_titles_are_closer_than_unrelated_ones(encoder):
    matrix, reordered, toy_story = encoder.encode(["The Matrix (1999)", "Matrix, The (1999)", "Toy Story (1995)"])
    assert float(matrix @ reordered) > float(matrix @ toy_story) + 0.2


def test_item_text_joins_title_categories_and_description():
    assert item_text("Heat (1995)", ["Action", " Crime "], "A heist.") == "Heat (1995). Action, Crime. A heist."
    assert item_text("", [], "") == ""
    assert text_hash("a") != text_hash("b") and len(text_hash("")) == 64


# --- refresh ---------------------------------------------------------------------------------------


def _item(external_id: str) -> Item:
    return Item.objects.get(external_id=external_id)


@pytest.mark.django_db
def test_a_refresh_embeds_each_item_once_and_then_only_changed_ones(encoder):
    items_upsert(
        items=[
            ItemRow("m1", "The Matrix (1999)", categories=["Sci-Fi"]),
            ItemRow("m2", "Toy Story (1995)", categories=["Animation"]),
            ItemRow("m3", "Heat (1995)", description="A heist in Los Angeles."),
        ]
    )

    first = item_embeddings_refresh(batch_size=2)
    second = item_embeddings_refresh()
    items_upsert(items=[ItemRow("m2", "Toy Story 2 (1999)", categories=["Animation"])])
    before = dict(ItemEmbedding.objects.values_list("item__external_id", "updated_at"))
    third = item_embeddings_refresh()

    assert first["computed"] == first["created"] == 3
    assert second["computed"] == 0 and second["unchanged"] == 3
    assert third["computed"] == third["updated"] == 1
    after = dict(ItemEmbedding.objects.values_list("item__external_id", "updated_at"))
    assert [external_id for external_id in after if after[external_id] != before[external_id]] == ["m2"]
    stored = ItemEmbedding.objects.get(item__external_id="m2")
    assert stored.encoder == ENCODER_NAME and stored.dimension == 384
    assert stored.text_sha256 == text_hash("Toy Story 2 (1999). Animation")
    matrix, present = item_embedding_matrix(np.array([_item("m2").pk, _item("m1").pk, 10**9]))
    np.testing.assert_allclose(matrix[0], encoder.encode(["Toy Story 2 (1999). Animation"])[0], atol=1e-5)
    assert present.tolist() == [True, True, False] and not matrix[2].any()


@pytest.mark.django_db
def test_an_item_without_text_is_stored_as_the_zero_vector(encoder):
    items_upsert(items=[ItemRow("blank")])
    counts = item_embeddings_refresh()
    matrix, present = item_embedding_matrix(np.array([_item("blank").pk]))
    assert counts["empty"] == 1 and present.all() and not matrix.any()


# --- the content recommender -----------------------------------------------------------------------


def test_the_content_model_refuses_data_without_item_features():
    data = InteractionData(
        n_users=1,
        n_items=2,
        users=np.zeros(1, dtype=np.int64),
        items=np.zeros(1, dtype=np.int64),
        weights=np.ones(1, dtype=np.float32),
        timestamps=np.zeros(1, dtype=np.int64),
    )
    with pytest.raises(ValueError, match="item features"):
        get_algorithm("content")().fit(data)


def test_recent_history_weighs_more_than_old_history():
    features = np.eye(3, dtype=np.float32)
    data = InteractionData(
        n_users=1,
        n_items=3,
        users=np.zeros(2, dtype=np.int64),
        items=np.array([0, 1]),  # item 0 first, item 1 last
        weights=np.ones(2, dtype=np.float32),
        timestamps=np.array([0, 1]),
        item_features=features,
    )
    model = get_algorithm("content")({"half_life": 1.0})
    model.fit(data)
    scores = model.score([0])[0]
    assert scores[1] > scores[0] > scores[2] == 0.0
    torch.testing.assert_close(torch.linalg.norm(model.user_profiles, dim=1), torch.ones(1))


def _taste_catalog() -> None:
    """Users of two opposite tastes (three of each), a sequel nobody has seen yet, and an item with no text."""
    titles = {f"s{n}": title for n, title in enumerate(SCIENCE_FICTION)}
    titles |= {f"f{n}": title for n, title in enumerate(FAMILY)}
    titles |= {"cold": COLD_SEQUEL, "blank": ""}
    items_upsert(items=[ItemRow(external_id, title) for external_id, title in titles.items()])
    histories = {"fan": ["s0", "s1", "s2", "f0"], "parent": ["f0", "f1", "f2", "s0"]}
    histories |= {f"{user}{copy}": history for user, history in histories.items() for copy in (2, 3)}
    interactions_ingest(
        events=[
            EventRow(user=user, item=item, occurred_at=START + timedelta(hours=order), kind="rating", value=5.0)
            for user, history in histories.items()
            for order, item in enumerate(history)
        ]
    )


def _loaded_with_features(slice_scenario):
    training = training_data_load(scenario=slice_scenario)
    split = protocol_split(data=training.data, protocol={"split": "leave_last_out"}, seed=0)
    return item_features_attach(training=training, split=split, scenario=slice_scenario)


@pytest.mark.django_db
# Eight items: the ridge reads two content directions (with more it would fit the six items with events exactly).
@pytest.mark.parametrize(("algorithm", "params"), [("content", {}), ("content_ridge", {"rank": 2})])
def test_a_content_model_recommends_an_item_without_events_to_a_user_with_similar_taste(encoder, algorithm, params):
    _taste_catalog()
    before = training_data_load(scenario=scenario(algorithm="content"))

    training, split = _loaded_with_features(Scenario.objects.get())

    cold, blank = _item("cold").pk, _item("blank").pk
    assert cold not in before.item_ids and cold in training.item_ids and blank in training.item_ids
    data = training.data
    assert data.item_features.shape == (data.n_items, 384) == (len(training.item_ids), 384)
    assert split.train.item_features is data.item_features and split.test.n_items == data.n_items
    assert not data.item_features[np.searchsorted(training.item_ids, blank)].any()  # no text: zero vector
    # The events still name the same items after the index grew.
    np.testing.assert_array_equal(training.item_ids[data.items], before.item_ids[before.data.items])
    # The fan's history ends with a family film, but three science-fiction films outweigh it.
    model = get_algorithm(algorithm)(params)
    model.fit(data)
    fan = int(np.searchsorted(training.user_ids, EndUser.objects.get(external_id="fan").pk))
    scores = model.score([fan])[0].numpy()
    scores[data.items[data.users == fan]] = -np.inf
    assert training.item_ids[int(np.argmax(scores))] == cold


def test_which_runs_load_item_features():
    assert needs_item_features("content", {})
    assert not needs_item_features("ease", {})
    assert needs_item_features("ease", {"content": "text"})  # a model with a content mode switched on


@pytest.mark.django_db
def test_the_command_runs_a_refresh_here_and_prints_progress_and_counts(encoder):
    items_upsert(items=[ItemRow(f"m{n}", title) for n, title in enumerate(SCIENCE_FICTION)])
    out, err = StringIO(), StringIO()

    call_command("embed_items", "--inline", "--batch-size", "2", stdout=out, stderr=err)

    assert "embedded 2/3 items" in err.getvalue() and "embedded 3/3 items" in err.getvalue()
    result = json.loads(out.getvalue())
    assert result["status"] == RunStatus.SUCCEEDED and result["counts"]["computed"] == 3
    assert EmbeddingJob.objects.get(pk=result["job"]).progress == 1.0


# --- the job, through the API and a real worker -----------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_refresh_job_runs_on_a_worker_and_reports_progress(celery_worker, api):
    items_upsert(items=[ItemRow(f"m{n}", title) for n, title in enumerate(SCIENCE_FICTION + FAMILY)])

    created = api.post("/api/v1/items/embeddings/refresh/")

    assert created.status_code == 202 and created.json()["status"] == "queued"
    job_id = created.json()["id"]
    wait_until(lambda: EmbeddingJob.objects.get(pk=job_id).is_finished, timeout=180)
    body = api.get(f"/api/v1/embedding-jobs/{job_id}/").json()
    assert body["status"] == RunStatus.SUCCEEDED, body["error"]
    assert body["progress"] == 1.0 and body["task_id"] and body["device"] == "cpu"
    assert body["counts"]["computed"] == 6 and body["encoder"] == ENCODER_NAME
    assert ItemEmbedding.objects.count() == 6


@pytest.mark.django_db
def test_only_catalog_editors_may_start_a_refresh(reader_api):
    assert reader_api.post("/api/v1/items/embeddings/refresh/").status_code == 403
    assert not EmbeddingJob.objects.exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("algorithm", "params"),
    [("content", {}), ("content_ridge", {}), ("sasrec", {"content": "prior", "epochs": 2, "embedding_size": 16})],
)
def test_a_content_run_trains_on_a_worker_and_indexes_items_without_events(celery_worker, algorithm, params):
    clustered_catalog()
    items_upsert(items=[ItemRow("new", COLD_SEQUEL)])

    run = training_run_create(scenario=scenario(algorithm=algorithm, hyperparameters=params))

    wait_until(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, timeout=180)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.data_snapshot["items"] == Item.objects.count() == 31
    assert ItemEmbedding.objects.count() == 31
