"""Transfer between runs: fine-tuning from a parent's weights, distillation from a teacher, STAR serving members."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from catalog.models import Item
from dashboards.services import account_create
from recsys_site.errors import ValidationFailed
from tests.test_groups import _group
from tests.test_sequential_models import SMALL_PARAMS, events, successor_data
from training.algorithms.base import EpochReport
from training.algorithms.distill import Subspace, Teacher, kl_divergence
from training.algorithms.distill import targets as distill_targets
from training.algorithms.params import HyperparameterError
from training.algorithms.registry import get_algorithm
from training.algorithms.sequential import VERY_LOW_LOGIT, MixedItemEmbedding, UserSequences, training_windows
from training.artifacts import artifact_load
from training.evaluation.splits import split_leave_last_out
from training.matrix import group_matrix_compute
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote

SASREC = SMALL_PARAMS["sasrec"] | {"layers": 2, "heads": 2}
BOTTOM, TOP = "network.encoder.blocks.0.", "network.encoder.blocks.1."


def _fitted_parent(epochs: int = 5):
    data = successor_data()
    parent = get_algorithm("sasrec")(SASREC | {"epochs": epochs}, seed=1)
    parent.fit(data)
    return parent, data


def _tensors(model, prefix: str) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_tensors().items() if name.startswith(prefix)}


# --- the algorithms ------------------------------------------------------------------------------------------


def test_initialize_from_copies_the_parents_weights_and_gathers_its_item_embeddings():
    parent, _ = _fitted_parent()
    item_map = np.array([5, 2, -1, 7])  # the child's four items: three the parent knows, one new
    child = get_algorithm("sasrec")(SASREC | {"embedding_size": 8, "learning_rate": 0.1}, seed=9)

    child.initialize_from(parent, item_map)

    assert child.hparams["embedding_size"] == 16  # the architecture comes from the parent
    parent_state, child_state = parent.state_tensors(), child.state_tensors()
    for name, value in child_state.items():
        if name.startswith("network.encoder."):
            assert torch.equal(value, parent_state[name]), name
    parent_table, child_table = parent_state["network.items.table"], child_state["network.items.table"]
    for child_item, parent_item in enumerate(item_map):
        same = torch.equal(child_table[child_item + 1], parent_table[parent_item + 1])
        assert same == (parent_item >= 0)  # token 0 is padding


def test_top_layer_fine_tuning_leaves_the_lower_layers_as_the_parent_trained_them():
    parent, data = _fitted_parent()
    top_only = get_algorithm("sasrec")(SASREC | {"epochs": 3, "finetune": "top"}, seed=1)
    every = get_algorithm("sasrec")(SASREC | {"epochs": 3, "finetune": "all"}, seed=1)
    for child in (top_only, every):
        child.initialize_from(parent, np.arange(data.n_items))
        child.fit(data)

    for name, value in _tensors(parent, BOTTOM).items():
        assert torch.equal(top_only.state_tensors()[name], value), name
    assert not all(torch.equal(every.state_tensors()[name], value) for name, value in _tensors(parent, BOTTOM).items())
    assert not all(torch.equal(top_only.state_tensors()[name], value) for name, value in _tensors(parent, TOP).items())


def test_the_distillation_loss_falls_over_a_few_steps():
    teacher, data = _fitted_parent(epochs=15)
    student = get_algorithm("distill")(
        {"embedding_size": 8, "layers": 1, "max_length": 10, "batch_size": 16, "learning_rate": 0.01, "epochs": 6},
        seed=0,
    )
    student.attach_teacher(teacher, np.arange(data.n_items))
    losses: list[float] = []

    student.fit(data, lambda report: losses.append(report.loss) if isinstance(report, EpochReport) else None)

    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0]
    assert student.parameter_count() < teacher.parameter_count() / 4
    users = np.arange(data.n_users)
    agreement = (student.score(users).argmax(1) == teacher.score(users).argmax(1)).float().mean()
    assert agreement >= 0.8  # the student learnt the teacher's (and the data's) next item


def test_the_distillation_term_is_the_kl_divergence_of_the_softmaxes_and_has_its_gradient():
    generator = torch.Generator().manual_seed(0)
    student = (3 * torch.randn(64, 300, generator=generator, dtype=torch.float64)).requires_grad_()
    teacher = 3 * torch.randn(64, 300, generator=generator, dtype=torch.float64)
    teacher[:, :7] = VERY_LOW_LOGIT  # items out of the softmax, as _training_logits leaves them
    with torch.no_grad():
        student[:, 3:9] = VERY_LOW_LOGIT
    textbook = F.kl_div(
        F.log_softmax(student, dim=1), F.log_softmax(teacher, dim=1), log_target=True, reduction="none"
    ).sum(1)

    ours = kl_divergence(student, teacher)

    assert torch.allclose(ours, textbook, rtol=1e-9, atol=1e-9)
    weights = torch.rand(64, generator=generator, dtype=torch.float64)
    (expected,) = torch.autograd.grad((weights * textbook).sum(), student)
    (gradient,) = torch.autograd.grad((weights * ours).sum(), student)
    assert torch.allclose(gradient, expected, rtol=1e-9, atol=1e-12)


def test_the_teachers_scores_reach_the_student_through_the_item_map():
    teacher, data = _fitted_parent(epochs=1)
    n = data.n_items
    inputs, targets, _ = training_windows(UserSequences.from_data(data), 10, 5)
    inputs[inputs == n] = 0  # the teacher's last item is the one the mapped student below does not know
    tokens, positions = torch.from_numpy(inputs), torch.from_numpy(targets >= 0)
    direct = teacher.position_scores(tokens, positions)
    reversed_map = np.arange(n)[::-1].copy()  # student item j is teacher item n - 1 - j ...
    reversed_map[0] = -1  # ... but student item 0 is new to the teacher

    assert torch.equal(Teacher(teacher, np.arange(n)).logits(tokens, positions), direct)
    through_map = Teacher(teacher, reversed_map).logits(torch.where(tokens > 0, n + 1 - tokens, 0), positions)
    assert torch.equal(through_map[:, 1:], direct.flip(1)[:, 1:])
    assert bool((through_map[:, 0] == VERY_LOW_LOGIT).all())


def test_a_student_computes_its_teachers_targets_once_and_learns_as_from_each_batchs_own(monkeypatch):
    teacher, data = _fitted_parent(epochs=3)
    windows = len(training_windows(UserSequences.from_data(data), 10, 5)[0]) + data.n_users  # serving_weight: +1 each
    lists = data.n_users  # the teacher's lists after each user's history, scored once per fit
    scored = []
    position_scores = teacher.position_scores
    monkeypatch.setattr(
        teacher, "position_scores", lambda tokens, at: scored.append(len(tokens)) or position_scores(tokens, at)
    )
    params = {"embedding_size": 8, "max_length": 10, "batch_size": 8, "epochs": 3, "serving_weight": 1.0}

    def fitted() -> tuple[dict[str, torch.Tensor], list[float]]:
        student, reports = get_algorithm("distill")(params, seed=0), []
        student.attach_teacher(teacher, np.arange(data.n_items)[::-1].copy())  # mapped: student item j is n - 1 - j
        student.fit(data, reports.append)
        return student.state_tensors(), [report.loss for report in reports]

    kept, kept_losses = fitted()
    assert sum(scored) == lists + windows  # each window once, before the first epoch
    scored.clear()
    monkeypatch.setattr(distill_targets, "TEACHER_TARGET_BYTES", 0)  # too little memory to keep them: each batch's own
    batched, batched_losses = fitted()
    assert sum(scored) == lists + windows * params["epochs"]

    assert kept_losses == pytest.approx(batched_losses, rel=1e-5)
    for name, value in kept.items():
        assert torch.allclose(value, batched[name], atol=1e-5), name


def _teacher_states(teacher, data, max_length: int, unknown: int | None = None) -> torch.Tensor:
    """The teacher's states at every prefix a student of ``max_length`` trains on (item ``unknown``, which the
    teacher does not know, read as padding)."""
    inputs, targets, _ = training_windows(UserSequences.from_data(data), max_length, max_length // 2)
    if unknown is not None:
        inputs[inputs == unknown + 1] = 0  # tokens are item indexes + 1
    return teacher.position_states(torch.from_numpy(inputs), torch.from_numpy(targets >= 0)).double()


def test_a_subspace_keeps_the_best_rank_k_approximation_of_the_scores():
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(300, 12, generator=generator, dtype=torch.float64) @ torch.randn(
        12, 12, generator=generator, dtype=torch.float64
    )
    vectors = 3.0 * torch.randn(40, 12, generator=generator, dtype=torch.float64)
    scores = states @ vectors.T
    left, singular, right = torch.linalg.svd(scores, full_matrices=False)
    for k in (3, 6, 12, 20):
        subspace = Subspace.fit(states, vectors, k)
        kept = min(k, 12)
        assert subspace.states.shape == subspace.items.shape == (12, kept)
        best = left[:, :kept] * singular[:kept] @ right[:kept]
        assert torch.allclose((states @ subspace.states) @ (vectors @ subspace.items).T, best, atol=1e-8)
        # the item side keeps the teacher's mean square per dimension
        assert (vectors @ subspace.items).square().mean().item() == pytest.approx(vectors.square().mean().item())


@pytest.mark.parametrize("size", [16, 8])
def test_the_student_starts_from_the_teachers_item_embeddings_mapped_to_keep_its_scores(size):
    teacher, data = _fitted_parent(epochs=3)
    student = get_algorithm("distill")(
        {"embedding_size": size, "max_length": 10, "epochs": 1, "learning_rate": 1e-6, "serving_weight": 0.0}, seed=0
    )
    item_map = np.arange(data.n_items)
    item_map[-1] = -1  # an item the teacher does not know keeps a fresh initialisation
    student.attach_teacher(teacher, item_map)
    student.fit(data)

    known = teacher.item_vectors()[:-1].double()
    scores = (
        _teacher_states(teacher, data, 10, unknown=data.n_items - 1) @ known.T
    )  # the teacher's scores where the student trains
    left, singular, right = torch.linalg.svd(scores, full_matrices=False)
    best_of_rank = left[:, :size] * singular[:size] @ right[:size]
    table = student.network.items.table[1:].detach().double()
    # some map of the teacher's states into the student's dimensions, scored against the student's item
    # vectors, gives the best rank-``size`` approximation of the teacher's scores
    mapped = torch.linalg.lstsq(table[:-1], best_of_rank.T).solution.T @ table[:-1].T
    assert torch.allclose(mapped, best_of_rank, atol=1e-3 * best_of_rank.abs().max().item())
    assert table[:-1].square().mean().item() == pytest.approx(known.square().mean().item(), rel=0.05)
    assert table[-1].abs().max() < 0.1  # the fresh normal(0, 0.02) row


MIXED = {"embedding_size": 8, "tail_size": 2, "head_items": 6, "max_length": 10, "batch_size": 16,
         "learning_rate": 0.01}  # fmt: skip


def _skewed_data():
    """successor_data with items 0-5 far more often someone's next item than the rest."""
    data = successor_data()
    walks = np.asarray(data.items).reshape(data.n_users, -1)
    walks[: data.n_users // 2] %= 6  # half the users circle over the first six items
    return dataclasses.replace(data, items=walks.ravel())


def test_a_mixed_dimension_student_gives_its_tail_items_narrow_embeddings(tmp_path):
    data = _skewed_data()
    teacher = get_algorithm("sasrec")(SASREC | {"epochs": 10}, seed=1)
    teacher.fit(data)
    student = get_algorithm("distill")(MIXED | {"epochs": 8}, seed=0)
    full = get_algorithm("distill")(MIXED | {"tail_size": 0, "epochs": 1}, seed=0)
    student.attach_teacher(teacher, np.arange(data.n_items))
    full.attach_teacher(teacher, np.arange(data.n_items))
    predicted = student.parameter_count_for(data.n_items)

    student.fit(data)
    full.fit(data)

    items = student.network.items
    assert int(items.head.sum()) == 6
    assert student.parameter_count() == predicted
    # 14 tail items at 2 dimensions and a 2 x 8 projection instead of 14 x 8 free numbers
    assert full.parameter_count() - student.parameter_count() == 14 * 8 - (14 * 2 + 2 * 8)
    users = np.arange(data.n_users)
    agreement = (student.score(users).argmax(1) == teacher.score(users).argmax(1)).float().mean()
    assert agreement >= 0.5
    student.save(tmp_path)
    loaded = get_algorithm("distill").load(tmp_path)
    assert torch.allclose(loaded.score(users), student.score(users))
    child = get_algorithm("sasrec")(SASREC, seed=0)
    child.initialize_from(student, np.arange(data.n_items))  # a full table: each item's mixed vector
    assert torch.allclose(child.network.items.weight(), items.weight())


def test_the_head_is_the_items_the_teacher_lists_most_after_the_users_histories():
    data = _skewed_data()  # items 0-5 have the most events, and the users who circle over them have seen them all
    teacher = get_algorithm("sasrec")(SASREC | {"epochs": 10}, seed=1)
    teacher.fit(data)
    student = get_algorithm("distill")(MIXED | {"epochs": 1}, seed=0)
    student.attach_teacher(teacher, np.arange(data.n_items))

    student.fit(data)

    listed = np.bincount(_teacher_lists(teacher, data).ravel().numpy(), minlength=data.n_items)
    events = np.bincount(data.items, minlength=data.n_items)
    expected = sorted(range(data.n_items), key=lambda item: (-listed[item], -events[item], item))[:6]
    head = student.network.items.head.nonzero().ravel().tolist()
    assert head == sorted(expected)
    assert head != [0, 1, 2, 3, 4, 5]  # not the items with the most events
    assert student.parameter_count() == student.parameter_count_for(data.n_items)


def _teacher_lists(teacher, data, k=10):
    """The teacher's top ``k`` after each user's history, training items excluded (the reference, via score)."""
    scores = teacher.score(np.arange(data.n_users))
    scores[torch.from_numpy(data.users), torch.from_numpy(data.items)] = -torch.inf
    return scores.topk(k, dim=1).indices


def test_a_student_keeps_the_epoch_whose_lists_agree_most_with_the_teachers():
    split = split_leave_last_out(successor_data())
    data = split.train
    teacher = get_algorithm("sasrec")(SASREC | {"epochs": 10}, seed=1)
    teacher.fit(data)
    student = get_algorithm("distill")(MIXED | {"tail_size": 0, "epochs": 6}, seed=0)
    student.attach_teacher(teacher, np.arange(data.n_items))
    reports = []

    student.fit(data, reports.append, validation=split.validation)

    agreements = [report.validation["teacher_agreement@10"] for report in reports]
    ndcgs = [report.validation["ndcg@10"] for report in reports]  # still measured, no longer deciding
    assert np.argmax(agreements) != np.argmax(ndcgs)  # so the two rules keep different epochs here
    assert student.kept_epoch == reports[int(np.argmax(agreements))].step
    theirs, ours = _teacher_lists(teacher, data), _teacher_lists(student, data)
    kept = (ours[:, :, None] == theirs[:, None, :]).any(dim=2).float().mean().item()
    assert kept == pytest.approx(max(agreements), abs=1e-6)


def test_a_mixed_embedding_takes_vectors_whole_in_the_head_and_best_of_rank_in_the_tail():
    head = torch.tensor([True, False, True, False, False, False])
    items = MixedItemEmbedding(head, size=4, tail_size=2)
    vectors = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    chosen = torch.tensor([True, True, True, True, False, True])  # item 4 keeps its fresh vector

    items.assign(chosen, vectors)

    weight = items.weight().detach().double()[1:]
    assert torch.allclose(weight[[0, 2]], vectors[[0, 2]], atol=1e-6)
    left, singular, right = torch.linalg.svd(vectors[[1, 3, 4]], full_matrices=False)
    assert torch.allclose(weight[[1, 3, 5]], left[:, :2] * singular[:2] @ right[:2], atol=1e-6)
    assert sum(weight.numel() for weight in items.parameters()) == 3 * 4 + 4 * 2 + 2 * 4


def test_a_tail_must_be_narrower_than_the_embeddings():
    with pytest.raises(HyperparameterError, match="tail_size"):
        get_algorithm("distill")({"embedding_size": 8, "tail_size": 8})


@pytest.mark.parametrize("retired", [{"alpha": 0.5}, {"temperature": 2.0}, {"head_by": "events"}, {"content": "side"}])
def test_a_student_refuses_the_settings_it_no_longer_takes(retired):
    with pytest.raises(HyperparameterError) as error:
        get_algorithm("distill")(retired)
    assert set(error.value.errors) == set(retired)


def test_a_student_needs_a_sequential_teacher():
    data = successor_data()
    popularity = get_algorithm("popularity")()
    popularity.fit(data)
    with pytest.raises(ValueError, match="cannot be a teacher"):
        get_algorithm("distill")().attach_teacher(popularity, np.arange(data.n_items))


@pytest.mark.parametrize("serving_weight", [0.0, 1.0])
def test_serving_weight_teaches_the_student_the_teachers_scores_after_each_users_latest_history(serving_weight):
    teacher, walks = _fitted_parent(epochs=15)
    # One event per user: no training prefix has a next item, so only the latest histories can teach anything.
    data = events(list(range(40)), [user % walks.n_items for user in range(40)], n_users=40, n_items=walks.n_items)
    student = get_algorithm("distill")(
        {"embedding_size": 8, "max_length": 10, "batch_size": 8, "learning_rate": 0.03, "epochs": 40,
         "serving_weight": serving_weight},
        seed=0,
    )  # fmt: skip
    student.attach_teacher(teacher, np.arange(data.n_items))
    student.fit(data)

    users = np.arange(data.n_users)
    expected = teacher.score_sequences([[item] for item in data.items]).argmax(1)  # the walk's next item
    agreement = float((student.score(users).argmax(1) == expected).float().mean())
    assert agreement >= 0.8 if serving_weight else agreement <= 0.2


def test_a_student_needs_a_teacher_whose_items_cover_its_own():
    teacher, data = _fitted_parent(epochs=1)
    student = get_algorithm("distill")({"max_length": 10, "epochs": 1})
    with pytest.raises(ValueError, match="teacher"):
        student.fit(data)
    student.attach_teacher(teacher, np.arange(data.n_items - 1))
    with pytest.raises(ValueError, match="item_map covers"):
        student.fit(data)


# --- runs on the platform ----------------------------------------------------------------------------------

RUN_SASREC = {"embedding_size": 16, "layers": 2, "heads": 2, "max_length": 10, "batch_size": 32, "epochs": 4}


def _execute(scenario, algorithm, params, parent=None) -> TrainingRun:
    run = training_run_create(scenario=scenario, algorithm=algorithm, params=params, parent=parent)
    status = training_run_execute(run_id=run.pk, device="cpu")
    run.refresh_from_db()
    assert status == RunStatus.SUCCEEDED, run.error
    return run


def _state(run: TrainingRun) -> dict[str, torch.Tensor]:
    return artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256).model.state_tensors()


@pytest.mark.django_db
def test_a_member_run_fine_tunes_the_group_run_and_its_page_shows_the_lineage(client):
    group, action, _ = _group()
    pretrained = _execute(group, "sasrec", RUN_SASREC)

    tuned = _execute(action, "sasrec", RUN_SASREC | {"finetune": "top", "epochs": 2}, parent=pretrained)

    assert tuned.parent_id == pretrained.pk
    parent_state, tuned_state = _state(pretrained), _state(tuned)
    bottom = [name for name in parent_state if name.startswith(BOTTOM)]
    assert bottom and all(torch.equal(tuned_state[name], parent_state[name]) for name in bottom)
    assert len(tuned_state["network.items.table"]) < len(parent_state["network.items.table"])  # the member's items

    account_create(username="vera", password="viewer-pass-123", role="viewer")
    client.login(username="vera", password="viewer-pass-123")
    page = client.get(f"/runs/{tuned.pk}/").content.decode()
    assert f'href="/runs/{pretrained.pk}/">run {pretrained.pk} (sasrec)</a>' in page
    assert 'data-testid="cost-table"' in page and 'id="cost-plot"' in page


@pytest.mark.django_db
def test_a_distilled_student_run_is_smaller_and_faster_to_serve_than_its_teacher(client):
    _, action, _ = _group()
    teacher = _execute(action, "sasrec", RUN_SASREC | {"embedding_size": 128, "layers": 6})

    student = _execute(
        action, "distill", {"embedding_size": 8, "layers": 1, "max_length": 10, "epochs": 3}, parent=teacher
    )

    assert student.parent_id == teacher.pk and student.metrics["ndcg@10"] > 0
    assert student.serving["parameters"] * 4 <= teacher.serving["parameters"]
    assert student.serving["batch_users"] == teacher.serving["batch_users"] > 0  # the same users timed
    # one layer of 8 dimensions against six of 128: each is the median of five timed calls
    assert 0 < student.serving["latency_ms"] < teacher.serving["latency_ms"]
    account_create(username="vera", password="viewer-pass-123", role="viewer")
    client.login(username="vera", password="viewer-pass-123")
    page = client.get(f"/runs/{teacher.pk}/").content.decode()
    assert f"run {student.pk}" in page and 'id="cost-plot"' in page


@pytest.mark.django_db
def test_a_student_run_with_a_teacher_that_is_not_sequential_is_refused_before_it_is_queued():
    _, action, _ = _group()
    teacher = _execute(action, "popularity", {})

    with pytest.raises(ValidationFailed) as refused:
        training_run_create(scenario=action, algorithm="distill", params={"max_length": 10}, parent=teacher)

    assert "learns from a teacher of" in refused.value.detail["parent"][0]
    assert "not from popularity" in refused.value.detail["parent"][0]
    assert not TrainingRun.objects.filter(algorithm="distill").exists()


@pytest.mark.django_db
def test_a_star_run_of_the_group_serves_each_member_in_its_own_domain(api):
    group, action, drama = _group()
    star = _execute(group, "star", RUN_SASREC | {"epochs": 6})
    for member in (action, drama):
        training_run_promote(run=star, scenario=member)

    model = artifact_load(directory=Path(star.artifact_path), sha256=star.artifact_sha256).model
    assert model.domain_names == ["action", "drama"]
    assert not torch.allclose(model.score([0], domain=0), model.score([0], domain=1))
    for member, first in ((action, 0), (drama, 20)):  # the member's slice: ten items of its category
        body = api.get(f"/api/v1/scenarios/{member.slug}/recommendations/", {"user": "u1", "k": 5}).json()
        assert body["run_id"] == star.pk and body["fallback"] is None
        ids = [int(item["item"].removeprefix("i")) for item in body["items"]]
        assert len(ids) == 5 and all(first <= item < first + 10 for item in ids)


@pytest.mark.django_db
def test_an_adapted_ease_run_of_the_group_serves_each_member_in_its_own_item_slice(api):
    group, action, drama = _group()
    run = _execute(group, "adapted_ease", {"l2": 10.0})
    for member in (action, drama):
        training_run_promote(run=run, scenario=member)

    loaded = artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)
    model = loaded.model
    assert model.domain_names == ["action", "drama"]
    assert {"transfer_1", "transfer_2"} <= set(run.history[-1])  # each member's transfer, chosen on validation
    for domain, category in enumerate(("Action", "Drama")):  # Comedy, in neither member, is in neither slice
        items = {int(item_id) for item_id in Item.objects.filter(categories=[category]).values_list("pk", flat=True)}
        scores = model.score([0], domain=domain)[0]
        assert {int(loaded.item_ids[p]) for p in torch.nonzero(torch.isfinite(scores))[:, 0]} == items
    for member, first in ((action, 0), (drama, 20)):  # the member's slice: ten items of its category
        for body in (
            api.get(f"/api/v1/scenarios/{member.slug}/recommendations/", {"user": "u1", "k": 5}).json(),
            api.post(f"/api/v1/scenarios/{member.slug}/recommendations/", {"items": ["i3", "i24"], "k": 5}).json(),
        ):
            assert body["run_id"] == run.pk and body["fallback"] is None
            ids = [int(item["item"].removeprefix("i")) for item in body["items"]]
            assert len(ids) == 5 and all(first <= item < first + 10 for item in ids)
    assert group_matrix_compute(group=group) == 2  # the run has a cell on each member
