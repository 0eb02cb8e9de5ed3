"""The transfer benchmark part: order destroyed, each member its part of one random split, figures with targets."""

import argparse
from pathlib import Path

import numpy as np

from benchmarks.tuning_parts import transfer

GENRES = ("Action|Thriller", "Comedy|Romance", "Drama")


def _movielens(folder: Path, *, users: int = 40, films: int = 30, seed: int = 0) -> Path:
    """A tiny ml-latest-small folder: a third of the films in each genre group, users who each rate 12 films mostly
    of one group."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    movies = ["movieId,title,genres", *(f"{film},Film {film},{GENRES[film % 3]}" for film in range(1, films + 1))]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    ratings = ["userId,movieId,rating,timestamp"]
    for user in range(1, users + 1):
        liked = [film for film in range(1, films + 1) if film % 3 == user % 3]
        chosen = {*rng.choice(liked, size=8, replace=False).tolist(), *rng.integers(1, films + 1, size=4).tolist()}
        ratings += [f"{user},{film},4.0,{1_000_000 + user * 100 + order}" for order, film in enumerate(sorted(chosen))]
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n")
    return folder


def test_each_member_keeps_its_part_of_one_random_split_of_the_unordered_events(tmp_path):
    group = transfer.unordered_group(folder=_movielens(tmp_path / "ml-latest-small"), seed=3)

    data = group.data
    assert sorted(data.timestamps.tolist()) == list(range(data.n_events))  # a permutation: no order left
    assert [member.name for member in group.members] == ["action-thriller", "comedy-romance", "drama-other"]
    assert sum(member.data.n_events for member in group.members) == data.n_events
    held_out = len(group.split.validation_events) + len(group.split.test_events)
    assert sum(len(m.split.validation_events) + len(m.split.test_events) for m in group.members) == held_out


def test_the_part_reports_each_member_and_the_targets_beside_the_figures(tmp_path):
    folder = _movielens(tmp_path / "ml-latest-small")
    args = argparse.Namespace(transfer_data=folder, transfer_trials=2, transfer_seed=3, transfer_device="cpu")

    figures = transfer.run(args)

    for key, target in transfer.TARGETS.items():
        assert isinstance(figures[key], float) and figures[f"target_{key}"] == target
    assert figures["transfer_group_model"] in transfer.GROUP_MODELS
    low, high = figures["transfer_smallest_member_gain_low"], figures["transfer_smallest_member_gain_high"]
    assert low <= figures["transfer_smallest_member_gain"] <= high
    for name in ("action_thriller", "comedy_romance", "drama_other"):
        assert 0.0 <= figures[f"transfer_{name}_adapted_transfer"] <= 1.0
        assert figures[f"transfer_{name}_alone_ndcg"] > 0
    rows = list(transfer.report_rows(figures))
    assert len(rows) == 5 and rows[0][3] == (figures["transfer_smallest_member_gain"] >= 0.10)
    assert list(transfer.report_rows({})) == []
