"""Does live history pay? Next-event accuracy of the frozen (stale) history against the live one, on MovieLens.

    .venv/bin/python -m benchmarks.live [--data ../shared/data/ml-latest-small] [--cutoff-share 0.8]
        [--evaluated 3000] [--sasrec-epochs 10] [--seed 0]

Builds the database ``recsys_bench_live`` (dropped afterwards) and imports ml-latest-small's films and the
ratings before the cut-off time T (the ``--cutoff-share`` quantile of the rating times), every rating an event.
Trains EASE, iALS and SASRec in-process through the platform's services on those events (one scenario each:
items with at least 5 events, so EASE's item × item matrix stays small; temporal split with 1% test and no
validation, so the models see nearly every event before T) and promotes each. Then replays the ratings after T
in time order. Before a sampled rating (``--evaluated`` of them, drawn uniformly and kept in time order, so the
run fits in minutes on two busy cores; SASRec trains few ``--sasrec-epochs`` for the same reason) it asks each
model for the user's top 10:

- **stale**: what serving did before live history: the user's training row (popularity for a user the model
  never saw), the user's items up to now masked;
- **live**: ``training.serving.recommendations_for_user``, which reads the user's events at request time;

then ingests every rating up to and including that one through ``catalog.services.interactions_ingest``. A rated
film the model does not know (fewer than 5 events before T) cannot be recommended by either and is not counted.
Figures: HitRate@10 and NDCG@10 of the next rating for each model and history, their ratio, and the share of the
users rating after T whom the model never saw. Target: live at least 1.3 × stale HitRate@10 for every model.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.bench_database import benchmark_database
from benchmarks.results_io import ROOT, machine, write_results

DB_NAME = "recsys_bench_live"
TARGET_RATIO = 1.3
K = 10
MODELS = ("ease", "ials", "sasrec")
MIN_ITEM_EVENTS = 5
INGEST_BATCH = 5000


@dataclass(frozen=True)
class Rating:
    user: str
    item: str
    value: float
    timestamp: int
    number: int  # line order, for a stable time order and an event id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--cutoff-share", type=float, default=0.8)
    parser.add_argument("--evaluated", type=int, default=3000)
    parser.add_argument("--sasrec-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    with benchmark_database(DB_NAME, artifacts="bench-artifacts-live"):
        figures = _measure(args)
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    _report(figures, args)


def _ratings(folder: Path) -> list[Rating]:
    with (folder / "ratings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ratings = [
        Rating(f"u{row['userId']}", f"m{row['movieId']}", float(row["rating"]), int(row["timestamp"]), number)
        for number, row in enumerate(rows)
    ]
    return sorted(ratings, key=lambda rating: (rating.timestamp, rating.number))


def _measure(args: argparse.Namespace) -> dict[str, float | int | str | None]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ratings = _ratings(args.data)
    cutoff = int(np.quantile([rating.timestamp for rating in ratings], args.cutoff_share))
    before = [rating for rating in ratings if rating.timestamp < cutoff]
    after = [rating for rating in ratings if rating.timestamp >= cutoff]
    _import_films(args.data)
    _ingest(before)
    scenarios = {name: _trained_scenario(name, args) for name in MODELS}
    import torch

    # Requests run on one thread each, as in a web process beside others: two threads on two busy cores make
    # SASRec's forward pass a hundred times slower (spinning), which would only slow the run down.
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    sampled = np.sort(rng.choice(len(after), size=min(args.evaluated, len(after)), replace=False))
    hits = _replay(after, sampled, scenarios)
    return _figures(hits, scenarios, before, after, cutoff)


def _import_films(folder: Path) -> None:
    from catalog.services import ItemRow, items_upsert

    with (folder / "movies.csv").open(newline="") as handle:
        films = [
            ItemRow(external_id=f"m{row['movieId']}", title=row["title"], categories=row["genres"].split("|"))
            for row in csv.DictReader(handle)
        ]
    items_upsert(items=films)


def _ingest(ratings: list[Rating]) -> None:
    from catalog.services import EventRow, interactions_ingest

    for start in range(0, len(ratings), INGEST_BATCH):
        interactions_ingest(
            events=[
                EventRow(
                    user=rating.user,
                    item=rating.item,
                    kind="rating",
                    value=rating.value,
                    occurred_at=datetime.fromtimestamp(rating.timestamp, tz=UTC),
                    event_id=f"r{rating.number}",
                )
                for rating in ratings[start : start + INGEST_BATCH]
            ]
        )


def train_and_promote(scenario, name: str) -> None:
    """Train a run of ``scenario`` here on the CPU, print how long it took under ``name``, and make it live."""
    from training.models import RunStatus, TrainingRun
    from training.services import training_run_create, training_run_execute, training_run_promote

    run = training_run_create(scenario=scenario)
    started = time.perf_counter()
    status = training_run_execute(run_id=run.pk, device="cpu")
    run = TrainingRun.objects.get(pk=run.pk)
    assert status == RunStatus.SUCCEEDED, run.error
    print(f"{name}: trained in {time.perf_counter() - started:.1f} s", flush=True)
    training_run_promote(run=run, force=True, reason="benchmark")


def _trained_scenario(algorithm: str, args: argparse.Namespace):
    from scenarios.services import scenario_create

    params = {
        "ease": {},
        "ials": {"factors": 64, "iterations": 10},
        "sasrec": {"epochs": args.sasrec_epochs, "embedding_size": 64, "layers": 2, "max_length": 50},
    }[algorithm]
    scenario = scenario_create(
        data={
            "slug": f"live-{algorithm}",
            "name": f"Live history, {algorithm}",
            "algorithm": algorithm,
            "hyperparameters": params,
            "split": "temporal",
            "validation_share": 0.0,
            "test_share": 0.01,
            "min_item_events": MIN_ITEM_EVENTS,
        }
    )
    train_and_promote(scenario, algorithm)
    scenario.refresh_from_db()
    return scenario


def _replay(after: list[Rating], sampled: np.ndarray, scenarios: dict) -> dict[str, dict[str, list[float]]]:
    """For each sampled rating and model: the NDCG@10 contribution of stale and live (0 for a miss)."""
    from catalog.models import Item

    item_ids = dict(Item.objects.values_list("external_id", "id"))
    gains: dict[str, dict[str, list[float]]] = {name: {"stale": [], "live": [], "ms": []} for name in scenarios}
    done = 0
    for count, index in enumerate(sampled.tolist()):
        _ingest(after[done:index])
        done = index
        rating = after[index]
        for name, scenario in scenarios.items():
            _judge(scenario, rating, item_ids[rating.item], gains[name])
        if count % 250 == 0:
            print(f"replayed {count}/{len(sampled)}", flush=True)
    return gains


def _judge(scenario, rating: Rating, item_id: int, gains: dict[str, list[float]]) -> None:
    from training.serving import model_cache, recommendations_for_user

    loaded = model_cache.get(scenario.live_run)
    if not np.isin(item_id, loaded.item_ids):
        return
    gains["stale"].append(_gain(_stale_top(loaded, rating.user), item_id))
    started = time.perf_counter()
    result = recommendations_for_user(scenario=scenario, user_external_id=rating.user, k=K)
    gains["ms"].append((time.perf_counter() - started) * 1000)
    gains["live"].append(_gain([entry.item_id for entry in result.items], item_id))


def _stale_top(loaded, user_external_id: str) -> list[int]:
    """Serving before live history: the user's training row, or popularity for a user the model never saw."""
    import torch

    from catalog.models import EndUser, Interaction
    from training.live import popularity_scores

    user = EndUser.objects.filter(external_id=user_external_id).first()
    position = None
    if user is not None:
        found = int(np.searchsorted(loaded.user_ids, user.pk))
        position = found if found < len(loaded.user_ids) and loaded.user_ids[found] == user.pk else None
    scores = popularity_scores(loaded).clone() if position is None else loaded.model.score([position])[0].clone()
    if user is not None:
        seen = list(Interaction.objects.filter(user=user).values_list("item_id", flat=True))
        scores[torch.from_numpy(np.isin(loaded.item_ids, seen))] = -torch.inf
    return [int(loaded.item_ids[p]) for p in torch.topk(scores, K).indices.tolist()]


def _gain(top: list[int], item_id: int) -> float:
    return 1.0 / math.log2(top.index(item_id) + 2) if item_id in top else 0.0


def _figures(gains, scenarios, before, after, cutoff) -> dict[str, float | int | str | None]:
    from catalog.models import EndUser
    from training.serving import model_cache

    figures: dict[str, float | int | str | None] = {
        "cutoff": datetime.fromtimestamp(cutoff, tz=UTC).date().isoformat(),
        "events_before_cutoff": len(before),
        "events_after_cutoff": len(after),
        "target_live_over_stale_hitrate": TARGET_RATIO,
    }
    users_after = {rating.user for rating in after}
    database_ids = dict(EndUser.objects.filter(external_id__in=users_after).values_list("external_id", "id"))
    ratios = []
    for name, scenario in scenarios.items():
        loaded = model_cache.get(scenario.live_run)
        unknown = sum(not np.isin(database_ids[user], loaded.user_ids) for user in users_after)
        stale, live = np.asarray(gains[name]["stale"]), np.asarray(gains[name]["live"])
        ratio = float((live > 0).mean() / max((stale > 0).mean(), 1e-9))
        ratios.append(ratio)
        figures |= {
            f"{name}_evaluated_events": len(stale),
            f"{name}_stale_hitrate_at_10": round(float((stale > 0).mean()), 4),
            f"{name}_live_hitrate_at_10": round(float((live > 0).mean()), 4),
            f"{name}_stale_ndcg_at_10": round(float(stale.mean()), 4),
            f"{name}_live_ndcg_at_10": round(float(live.mean()), 4),
            f"{name}_live_over_stale_hitrate": round(ratio, 3),
            f"{name}_live_request_ms_median": round(float(np.median(gains[name]["ms"])), 2),
            f"{name}_unknown_user_share": round(unknown / max(len(users_after), 1), 4),
        }
    figures["live_over_stale_hitrate_min"] = round(min(ratios), 3)
    figures["users_after_cutoff"] = len(users_after)
    return figures


def _report(figures: dict, args: argparse.Namespace) -> None:
    figures |= {
        "evaluated_sample": args.evaluated,
        "sasrec_epochs": args.sasrec_epochs,
        "machine": machine(),
    }
    path = write_results("live", figures)
    for key, value in figures.items():
        print(f"{key}: {value}")
    verdict = "meets" if figures["live_over_stale_hitrate_min"] >= TARGET_RATIO else "misses"
    print(f"live over stale HitRate@10, worst model: {figures['live_over_stale_hitrate_min']} ({verdict} the target)")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
