"""(e) cold items: a tenth of the films held out of training entirely; popularity, content, the content ridge, SASRec
without content and the two content hybrids rank them for the users who rated them. Nothing looks at the cold films
to choose a setting: the choices are made on pseudo-cold films (another tenth of the warm films held out of a
fitting)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.multi_scenario.data import Dataset
from benchmarks.multi_scenario.fitting import fit, say
from training.algorithms.base import EpochReport
from training.algorithms.registry import get_algorithm
from training.evaluation.compare import ratio_interval
from training.evaluation.ranking import evaluate
from training.evaluation.slices import activity_slices
from training.evaluation.splits import select_events, split_leave_last_out
from training.interactions import HeldOut, InteractionData


def encode(dataset: Dataset, device: str) -> np.ndarray:
    """Sentence-encoder embeddings of each film's title and genres: ``(n_items, 384)`` float32."""
    from training.content import TextEncoder, item_text

    texts = [item_text(title, genres, "") for title, genres in zip(dataset.titles, dataset.genres, strict=True)]
    return TextEncoder.shared(device).encode(texts)


def cold_items(
    dataset: Dataset,
    device: str,
    epochs: int,
    content_rank: int | None = None,
    draw: int = 0,
    hybrids: Sequence[str] = ("prior", "side"),
    prior_params: dict | None = None,
) -> dict[str, float]:
    """(e) on one draw of the cold films (``draw`` 0 is the reported one; others show how much it varies);
    ``prior_params`` are more of the content-prior hybrid's hyperparameters."""
    data = dataset.data
    rng = np.random.default_rng(11 + draw)
    cold = rng.choice(data.n_items, size=max(1, data.n_items // 10), replace=False)
    features = dataset.features if dataset.features is not None else encode(dataset, device)
    train, test, exclude = hold_out_items(dataclasses.replace(data, item_features=features), cold)
    # Each user's last warm rating is the hybrid's warm validation; the rest trains the models.
    warm_split = split_leave_last_out(train)
    validation = warm_split.test
    train = select_events(train, np.concatenate([warm_split.train_events, warm_split.validation_events]))
    out = {"cold_items": len(cold), "cold_events": test.n_pairs}
    popularity = get_algorithm("popularity")({}, device=device, seed=7)
    popularity.fit(train)
    # Popularity gives every cold film the same score, so its ranking is the tie order. By item index that order
    # leaks information (MovieLens ids run roughly from the most to the least rated films); the fair baseline is
    # the mean over random tie orders.
    out["popularity_index_ties_ndcg"] = evaluate(popularity, train, test, ks=[10], exclude=exclude)["metrics"][
        "ndcg@10"
    ]
    random_ties = [
        evaluate(RandomTies(popularity, seed), train, test, ks=[10], exclude=exclude) for seed in range(TIE_ORDERS)
    ]
    out["popularity_ndcg"] = statistics.mean(r["metrics"]["ndcg@10"] for r in random_ties)
    out["popularity_recall"] = statistics.mean(r["metrics"]["recall@10"] for r in random_ties)
    popularity_per_user = np.mean([r["per_user"]["ndcg@10"] for r in random_ties], axis=0)
    content = get_algorithm("content")({}, device=device, seed=7)
    content.fit(train)
    metrics = evaluate(content, train, test, ks=[10], exclude=exclude)["metrics"]
    out["content_ndcg"], out["content_recall"] = metrics["ndcg@10"], metrics["recall@10"]

    pseudo = pseudo_cold_split(train, validation)
    say(f"  cold films, draw {draw}: content ridge settings on the pseudo-cold films")
    folds = [pseudo, *(pseudo_cold_split(train, validation, seed) for seed in range(14, 13 + RIDGE_FOLDS))]
    ridge_choice = choose_ridge(folds, device)
    ridge = get_algorithm("content_ridge")(ridge_choice["params"], device=device, seed=7)
    ridge.fit(train)
    ridge_result = evaluate(ridge, train, test, ks=[10], exclude=exclude)
    out["content_ridge_ndcg"] = ridge_result["metrics"]["ndcg@10"]
    out["content_ridge_recall"] = ridge_result["metrics"]["recall@10"]
    out["content_ridge_rank"], out["content_ridge_l2"] = ridge_choice["params"]["rank"], ridge_choice["params"]["l2"]
    out["fold_content_ridge_ndcg"] = ridge_choice["fold_cold_ndcg"]
    say(f"    content ridge {ridge_choice['params']}: cold NDCG@10 {out['content_ridge_ndcg']:.4f}")

    say("  the ID-only SASRec, early-stopped on the warm validation")
    plain, _ = fit("sasrec", train, validation, device, epochs)
    out.update(warm_figures("sasrec", plain, train, validation, cold))
    out["sasrec_ndcg"] = evaluate(plain, train, test, ks=[10], exclude=exclude)["metrics"]["ndcg@10"]
    split = ColdSplit(train, validation, test, exclude, cold, popularity_per_user)
    if "prior" in hybrids:
        out.update(prior_hybrid(split, device, epochs, ridge_choice, **(prior_params or {})))
    if "side" in hybrids:
        out.update(side_hybrid(split, device, epochs, pseudo, content_rank))
    return out


@dataclasses.dataclass
class ColdSplit:
    """One draw of (e): the warm training events, the warm validation, the cold films' test and exclusion, the
    cold films, and popularity's NDCG@10 per tested user (random tie orders averaged)."""

    train: InteractionData
    validation: HeldOut
    test: HeldOut
    exclude: HeldOut
    cold: np.ndarray
    popularity_per_user: np.ndarray


def prior_hybrid(split: ColdSplit, device: str, epochs: int, ridge_choice: dict, **params) -> dict:
    """(e)'s content-prior hybrid: SASRec with the chosen content ridge as its prior (and ``params``, recorded
    where numeric), early-stopped on the warm validation."""
    train, validation, test, exclude = split.train, split.validation, split.test, split.exclude
    say("  the content-prior hybrid, early-stopped on the warm validation")
    out = {f"prior_hybrid_{name}": float(value) for name, value in params.items() if isinstance(value, int | float)}
    prior_params = {"prior_rank": ridge_choice["params"]["rank"], "prior_l2": ridge_choice["params"]["l2"], **params}
    prior, _ = fit("sasrec", train, validation, device, epochs, content="prior", **prior_params)
    out.update(warm_figures("prior_hybrid", prior, train, validation, split.cold))
    result = evaluate(prior, train, test, ks=[10], exclude=exclude)
    out["prior_hybrid_ndcg"], out["prior_hybrid_recall"] = result["metrics"]["ndcg@10"], result["metrics"]["recall@10"]
    interval = ratio_interval(split.popularity_per_user, np.asarray(result["per_user"]["ndcg@10"]))
    out["prior_hybrid_over_popularity_low"], out["prior_hybrid_over_popularity_high"] = interval.low, interval.high
    say(f"    content-prior hybrid: cold NDCG@10 {out['prior_hybrid_ndcg']:.4f}")
    return out


def side_hybrid(split: ColdSplit, device: str, epochs: int, pseudo: PseudoCold, content_rank: int | None) -> dict:
    """(e)'s content-side hybrid: content_rank and epochs chosen on the pseudo-cold films, then fitted for exactly
    that many epochs."""
    train, validation, test, exclude = split.train, split.validation, split.test, split.exclude
    out = {}
    ranks = RANK_CANDIDATES if content_rank is None else (content_rank,)
    say("  the content-side hybrid: candidates on the pseudo-cold films, then the chosen one")
    choice = choose_hybrid(pseudo, device, epochs, ranks)
    hybrid = get_algorithm("sasrec")(
        {"content": "side", "content_rank": choice["rank"], "epochs": choice["epoch"]}, device=device, seed=7
    )
    hybrid.fit(train)  # exactly the chosen epochs: no validation to stop on
    result = evaluate(hybrid, train, test, ks=[10], exclude=exclude)
    metrics = result["metrics"]
    out["hybrid_ndcg"], out["hybrid_recall"] = metrics["ndcg@10"], metrics["recall@10"]
    interval = ratio_interval(split.popularity_per_user, np.asarray(result["per_user"]["ndcg@10"]))  # 95%, users
    out["hybrid_over_popularity_low"], out["hybrid_over_popularity_high"] = interval.low, interval.high
    say(f"    hybrid, content_rank {choice['rank']}, {choice['epoch']} epochs: cold NDCG@10 {metrics['ndcg@10']:.4f}")
    out.update(warm_figures("hybrid", hybrid, train, validation, split.cold))
    out["hybrid_epochs"] = choice["epoch"]
    out["hybrid_content_rank"] = choice["rank"]
    out.update({key: value for key, value in choice.items() if key.startswith("fold_")})
    return out


RANK_CANDIDATES = (16, 64, 0)  # content_rank values the pseudo-cold validation chooses from (0: all 384)
# The content ridge's (rank, l2) grid for the pseudo-cold validation (rank 0: all 384 dimensions).
RIDGE_CANDIDATES = tuple((rank, l2) for rank in (16, 32, 64, 128, 0) for l2 in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2))
RIDGE_FOLDS = 3  # draws of pseudo-cold films the ridge's settings are chosen on (the side hybrid's: the first)


def warm_figures(label: str, model, train: InteractionData, validation: HeldOut, cold: np.ndarray) -> dict[str, float]:
    """NDCG@10 on the warm validation (each user's last warm rating), the share of its ratings of films with
    at most 5 training ratings that made the top 10 (how the model serves films with few events), and the share
    of the cold films in those users' top 10 among every film they have not rated (how often new films surface)."""
    ndcg = evaluate(model, train, validation, ks=[10])["metrics"]["ndcg@10"]
    slices = activity_slices(model, train, validation, k=10)
    users = validation.users_with_items()
    scores = model.score(users)
    scores[train.csr().to_dense()[torch.from_numpy(users)] > 0] = -torch.inf
    top = scores.topk(10, dim=1).indices.numpy()
    return {
        f"{label}_warm_validation_ndcg": ndcg,
        f"{label}_few_event_films_recall": slices.get("slice.items.cold.recall@10", 0.0),
        f"{label}_cold_share_of_top10": float(np.isin(top, cold).mean()),
        "few_event_films_validation_ratings": slices["slice.items.cold.count"],
    }


@dataclasses.dataclass
class PseudoCold:
    """``train`` with another tenth of its films held out as if cold: the fold to fit on, its test and exclusion
    (as for the real cold films), the warm validation without those films, and the films."""

    train: InteractionData
    test: HeldOut
    exclude: HeldOut
    validation: HeldOut
    films: np.ndarray


def pseudo_cold_split(train: InteractionData, validation: HeldOut, seed: int = 13) -> PseudoCold:
    rng = np.random.default_rng(seed)
    seen = np.unique(train.items)
    films = rng.choice(seen, size=max(1, len(seen) // 10), replace=False)
    fold_train, fold_test, fold_exclude = hold_out_items(train, films)
    users, items = validation.pairs()
    kept = ~np.isin(items, films)
    fold_validation = HeldOut.from_pairs(train.n_users, train.n_items, users[kept], items[kept])
    return PseudoCold(fold_train, fold_test, fold_exclude, fold_validation, films)


def choose_ridge(folds: list[PseudoCold], device: str) -> dict:
    """The content ridge's rank and l2 that rank the pseudo-cold films best, on average over ``folds`` (closed
    form: one fit each, so several draws of pseudo-cold films cost little and steady the choice)."""
    best: dict = {"fold_cold_ndcg": -1.0}
    for rank, l2 in RIDGE_CANDIDATES:
        ndcgs = []
        for fold in folds:
            model = get_algorithm("content_ridge")({"rank": rank, "l2": l2}, device=device, seed=7)
            model.fit(fold.train)
            ndcgs.append(evaluate(model, fold.train, fold.test, ks=[10], exclude=fold.exclude)["metrics"]["ndcg@10"])
        if statistics.mean(ndcgs) > best["fold_cold_ndcg"]:
            best = {"params": {"rank": rank, "l2": l2}, "fold_cold_ndcg": statistics.mean(ndcgs)}
    say(f"    content ridge: pseudo-cold NDCG@10 best {best['fold_cold_ndcg']:.4f} with {best['params']}")
    return best


def hold_out_items(data: InteractionData, items: np.ndarray) -> tuple[InteractionData, HeldOut, HeldOut]:
    """``data`` without any event of ``items``; those events as a test set; and the exclusion that ranks each
    tested user's held-out films among ``items`` only (every other film is excluded)."""
    held = np.isin(data.items, items)
    test = HeldOut.from_pairs(data.n_users, data.n_items, data.users[held], data.items[held])
    tested = test.users_with_items()
    others = np.setdiff1d(np.arange(data.n_items), items)
    exclude = HeldOut.from_pairs(
        data.n_users, data.n_items, np.repeat(tested, len(others)), np.tile(others, len(tested))
    )
    return select_events(data, np.flatnonzero(~held)), test, exclude


def choose_hybrid(pseudo: PseudoCold, device: str, epochs: int, ranks) -> dict:
    """Pseudo-cold validation: the content-side hybrid's content_rank and epoch count, chosen without the cold films.

    The hybrid is fitted on ``pseudo.train`` once per candidate rank (early-stopped on the warm validation, the
    pseudo-cold films left out of it), and after every epoch ranks the pseudo-cold films for the users who rated
    them, as the cold films are ranked. The (rank, epoch) with the best NDCG@10 there wins; the warm validation
    NDCG@10 at that epoch and at the run's best warm epoch show what stopping there costs the films with events.
    """
    fold_train, fold_test, fold_exclude = pseudo.train, pseudo.test, pseudo.exclude
    best: dict = {"fold_cold_ndcg": -1.0}
    for rank in ranks:
        model = get_algorithm("sasrec")(
            {"content": "side", "content_rank": rank, "epochs": epochs}, device=device, seed=7
        )
        curve: list[tuple[float, float]] = []  # (pseudo-cold NDCG@10, warm validation NDCG@10) per epoch

        def observe(report: EpochReport, model=model, curve=curve) -> None:
            cold = evaluate(model, fold_train, fold_test, ks=[10], exclude=fold_exclude)["metrics"]["ndcg@10"]
            curve.append((cold, report.validation.get("ndcg@10", 0.0)))

        model.fit(fold_train, observe, validation=pseudo.validation)
        epoch = max(range(len(curve)), key=lambda i: curve[i][0])
        warm_best = max(warm for _, warm in curve)
        say(
            f"    hybrid, content_rank {rank}: pseudo-cold NDCG@10 best {curve[epoch][0]:.4f} after epoch {epoch + 1} "
            f"(of {len(curve)}), warm validation there {curve[epoch][1]:.4f} (best {warm_best:.4f})"
        )
        if curve[epoch][0] > best["fold_cold_ndcg"]:
            best = {
                "rank": rank,
                "epoch": epoch + 1,
                "fold_cold_ndcg": curve[epoch][0],
                "fold_warm_validation_ndcg": curve[epoch][1],
                "fold_warm_validation_ndcg_best": warm_best,
                "fold_cold_items": len(pseudo.films),
            }
    return best


TIE_ORDERS = 20
DRAW_FIGURES = ("popularity_ndcg", "content_ndcg", "content_ridge_ndcg", "content_ridge_rank", "content_ridge_l2",
                "prior_hybrid_ndcg", "prior_hybrid_over_popularity_low", "prior_hybrid_over_popularity_high",
                "hybrid_ndcg", "hybrid_over_popularity_low", "hybrid_over_popularity_high", "hybrid_epochs",
                "hybrid_content_rank")  # fmt: skip


class RandomTies:
    """A model whose equal scores are ordered at random (a fixed random order per seed) instead of by index."""

    def __init__(self, model, seed: int) -> None:
        self.model, self.n_items = model, model.n_items
        order = np.random.default_rng(seed).permutation(model.n_items).astype(np.float32)
        self.offset = torch.from_numpy(order / model.n_items * 1e-4)

    def score(self, users) -> torch.Tensor:
        scores = self.model.score(users)
        return scores + self.offset.to(scores.device)
