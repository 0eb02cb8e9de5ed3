"""Multi-scenario adaptation on MovieLens: scenario-alone vs pretrain + fine-tune vs STAR vs a distilled
student, and content / hybrid models on cold items.

    .venv/bin/python benchmarks/multi_scenario.py [--datasets ml-100k ml-latest-small] [--device cpu|cuda]
                                                  [--epochs 200] [--out NAME]
                                                  [--parts adaptation cold teacher-init students]
                                                  [--hybrids prior side] [--cold-draws N]
                                                  [--prior-param NAME=VALUE ...]
                                                  [--scenarios NAME ...] [--seeds N] [--student-layers 1 [2]]
                                                  [--student-tail-size T] [--student-head-items H]
                                                  [--student-serving-weight W]
                                                  [--student-param NAME=VALUE ...] [--cache DIR]

Scenarios (the rule): each film belongs to one genre group, the first of these its genres meet:
  action-thriller: Action, Adventure, Sci-Fi, Thriller, Crime, War, Western, Mystery, Horror, IMAX;
  comedy-romance:  Comedy, Romance, Musical, Children('s), Animation, Fantasy;
  drama-other:     everything else (Drama, Documentary, Film-Noir, no genre).
A scenario's events are the ratings of its films (every rating counts as an interaction).

Protocol: the whole dataset (the group) is split leave-last-out per user; each scenario keeps the parts
of that split on its films, so pretraining on the group never sees a scenario's test events. Full
ranking over the scenario's films, training and validation items excluded, NDCG@10 and Recall@10.
(a) SASRec on each scenario alone; (b) SASRec pretrained on the group, fine-tuned per scenario;
(c) one STAR model on the group, one domain per scenario; (d) a small student distilled from (b)
(1 layer; its embedding size the largest multiple of its 2 heads, up to 32, within a quarter of (b)'s
parameters; early-stopping patience 30 epochs instead of 10);
(e) cold items: 10% of the films are held out of training entirely, and each user's last rating of a warm
film is the warm validation. Models rank the cold films for the users who rated them, against popularity (which
knows nothing of them: every cold film ties, and the ties are ordered at random, averaged over 20 orders):
content (the user's recency-weighted mean of sentence-encoder embeddings of title and genres), the content ridge
(a closed-form map from the content of a user's films to the content of the films they take), SASRec without
content, and two hybrids: SASRec with the content ridge as a prior (content "prior": items without events are
ranked by the ridge alone; early-stopped on the warm validation) and SASRec with the embeddings as side input
(content "side"). Nothing looks at the cold films to choose a setting: the ridge's rank and l2 (a grid, for the
prior hybrid too) are those that rank pseudo-cold films best on average over 3 draws (another 10% of the warm
films held out of a fitting); the side hybrid's content_rank (16, 64 or all 384 dimensions; or the given
--content-rank) and epoch count are chosen on the first of those draws, and it is then fitted on every warm film
for that many epochs. --prior-param sets others of the content-prior hybrid's hyperparameters (SASRec's, e.g.
prior_dropout=0 prior_folds=1, to see what its training adds to the warm films; the cold films are the ridge's).
Each hybrid's ratio to popularity on the cold films, and each student's share of (b)'s NDCG@10 in the
teacher-init and students parts, come with a 95% paired bootstrap interval over the evaluated users.
teacher-init trains each student twice, item embeddings fresh and from the teacher's; students repeats
(b) and (d) under --seeds seeds (from one pretrained group model) and reports the share of their means, with
students of --student-layers layers (1, as elsewhere, or 2), each as large as the quarter allows; given
both depths, each seed trains both students and keeps the one with the better validation NDCG@10. With
--student-tail-size T, its students have mixed-dimension embeddings: the --student-head-items (500) films with the
most training ratings keep the full size, the others T dimensions mapped up by one shared projection. With
--student-serving-weight W, they also match (b)'s scores after each user's whole training history (the input both
are scored from; no test or validation rating is read there), each such position weighing W training positions.
--student-param sets any other of the students' hyperparameters (distill's, as the API takes them: e.g.
head_by=teacher alpha=1 temperature=1 dropout=0 learning_rate=0.006); with select_by=teacher a seed's students are
compared, and their time to best measured, at the epoch they keep (the one agreeing most with (b)).
With --cache DIR, the teacher-init and students parts save the pretrained group model and each fine-tuned (b)
under DIR and reuse them in a later run with the same dataset, seed, epoch cap, device and thread count, so trying
other students does not retrain their teachers (and they all learn from the same ones: retrained, the teachers
repeat on one machine, but CPU float sums may differ on another).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.report import ROOT, machine, table, write_results, write_section
from training.algorithms.base import EpochReport, Recommender
from training.algorithms.distill import AGREEMENT
from training.algorithms.params import HyperparameterError
from training.algorithms.registry import get_algorithm
from training.algorithms.sequential import MixedItemEmbedding
from training.evaluation.compare import ratio_interval
from training.evaluation.ranking import evaluate
from training.evaluation.slices import activity_slices
from training.evaluation.splits import select_events, split_leave_last_out, split_subset
from training.interactions import HeldOut, InteractionData

GROUPS = (
    ("action-thriller", {"Action", "Adventure", "Sci-Fi", "Thriller", "Crime", "War", "Western", "Mystery", "Horror",
                         "IMAX"}),
    ("comedy-romance", {"Comedy", "Romance", "Musical", "Children's", "Children", "Animation", "Fantasy"}),
    ("drama-other", None),
)  # fmt: skip
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")  # fmt: skip
DEFAULT_DATASETS = ["ml-100k", "ml-latest-small"]
FIRST_SEED = 7  # every model's seed; the students part counts up from it
# The students' training hyperparameters the students part records (and names in its table when not the default).
STUDENT_TRAINING = ("alpha", "temperature", "dropout", "learning_rate")
STUDENT_DEFAULTS = {param.name: param.default for param in get_algorithm("distill").params}
TARGETS = {"finetune_gain_smallest": 0.10, "finetune_worst_loss": -0.01, "student_share_of_ndcg": 0.95,
           "student_parameter_share": 0.25, "hybrid_over_popularity_cold": 3.0}  # fmt: skip


@dataclasses.dataclass
class Dataset:
    name: str
    data: InteractionData
    titles: list[str]
    genres: list[list[str]]
    features: np.ndarray | None = None  # (n_items, 384) text embeddings, computed on demand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--out", default="multi_scenario")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("adaptation", "cold", "teacher-init", "students"),
        default=["adaptation", "cold"],
        help="(a) to (d); (e) cold items (needs the text encoder or --features); teacher-init: (b) and (d) "
        "with and without the student starting from the teacher's item embeddings; students: (b) and (d) over "
        "--seeds seeds.",
    )
    parser.add_argument(
        "--features",
        type=Path,
        help="Folder of precomputed item embeddings (NAME.npy, from "
        "--save-features), for a machine without the encoder package.",
    )
    parser.add_argument("--save-features", type=Path, help="Encode each dataset's films into this folder and stop.")
    parser.add_argument(
        "--content-rank",
        type=int,
        help="The hybrid's content_rank (principal directions of the text embeddings its projection reads; "
        "0: all); by default pseudo-cold validation chooses among 16, 64 and all.",
    )
    parser.add_argument(
        "--hybrids",
        nargs="+",
        choices=tuple(HYBRIDS),
        default=list(HYBRIDS),
        help="(e): the hybrids to train, content prior and content side (the side hybrid's settings search costs "
        "most of the part's time).",
    )
    parser.add_argument(
        "--prior-param",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="(e): more of the content-prior hybrid's hyperparameters (SASRec's), e.g. prior_dropout=0 prior_folds=1.",
    )
    parser.add_argument(
        "--cold-draws",
        type=int,
        default=1,
        help="Repeat (e) on this many draws of the cold films (the first is the reported one) to show its spread.",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=[name for name, _ in GROUPS],
        default=[name for name, _ in GROUPS],
        help="teacher-init, students: train the students on these scenarios only (the group is pretrained on all).",
    )
    parser.add_argument("--seeds", type=int, default=3, help="students: fine-tune and distil under this many seeds.")
    parser.add_argument(
        "--student-layers",
        type=int,
        nargs="+",
        choices=(1, 2),
        default=[1],
        help="students: the students' encoder layers (their size is then the largest within a quarter of (b)'s); "
        "given both, each seed keeps the student with the better validation NDCG@10.",
    )
    parser.add_argument(
        "--student-tail-size",
        type=int,
        default=0,
        help="students: give every film but the --student-head-items most rated embeddings of this many dimensions "
        "(mixed-dimension embeddings; 0: every film the student's full size).",
    )
    parser.add_argument(
        "--student-head-items",
        type=int,
        default=500,
        help="students, with --student-tail-size: the films with full-size embeddings.",
    )
    parser.add_argument(
        "--student-serving-weight",
        type=float,
        default=0.0,
        help="students: the students' serving_weight (they also match (b) after each user's whole training "
        "history, each such position weighing this many training positions; 0: training prefixes only).",
    )
    parser.add_argument(
        "--student-param",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="students: more of the students' hyperparameters (distill's), e.g. head_by=teacher alpha=1.",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="teacher-init, students: save the pretrained group model and the fine-tuned (b) models here, and reuse "
        "those an earlier run saved with the same dataset, seed, epoch cap, device and thread count.",
    )
    args = parser.parse_args()
    if args.cold_draws < 1:
        parser.error("--cold-draws must be at least 1")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if len(set(args.student_layers)) < len(args.student_layers):
        parser.error("--student-layers names a depth twice")
    if args.student_tail_size < 0 or args.student_head_items < 1 or args.student_serving_weight < 0:
        parser.error(
            "--student-tail-size and --student-serving-weight must be at least 0 and --student-head-items at least 1"
        )
    student_params = {"tail_size": args.student_tail_size, "head_items": args.student_head_items}
    student_params = student_params if args.student_tail_size else {}
    if args.student_serving_weight:
        student_params["serving_weight"] = args.student_serving_weight
    student_params = named_params(
        parser, "--student-param", "distill", args.student_param, ("embedding_size", "layers", "epochs"), student_params
    )
    prior_params = named_params(parser, "--prior-param", "sasrec", args.prior_param, PRIOR_HYBRID_SET, {}, PRIOR_MODE)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    threads = torch.get_num_threads()  # recorded: float sums, and so the seeded figures, depend on it
    figures: dict[str, float | int | str] = {"device": args.device, "epochs_cap": args.epochs, "torch_threads": threads}
    sections = []
    if args.save_features:
        args.save_features.mkdir(parents=True, exist_ok=True)
        for name in args.datasets:
            np.save(args.save_features / f"{name}.npy", encode(load(name, args.data_root / name), "cpu"))
        return
    for name in args.datasets:
        say(f"==> {name}: {', '.join(args.parts)}")
        dataset = load(name, args.data_root / name)
        if args.features:
            dataset.features = np.load(args.features / f"{name}.npy")
        results = adaptation(dataset, args.device, args.epochs) if "adaptation" in args.parts else {}
        draws = [
            cold_items(dataset, args.device, args.epochs, args.content_rank, draw, args.hybrids, prior_params)
            for draw in range(args.cold_draws if "cold" in args.parts else 0)
        ]
        figures.update(flatten(name, results, draws))
        sections.append(markdown(name, results, draws))
        if "teacher-init" in args.parts:
            ablation = teacher_init_ablation(dataset, args.device, args.epochs, args.scenarios, args.cache)
            figures.update(per_scenario_figures(name, ablation))
            sections.append(teacher_init_markdown(ablation))
        if "students" in args.parts:
            runs = student_seeds(
                dataset,
                args.device,
                args.epochs,
                args.scenarios,
                args.seeds,
                args.student_layers,
                args.cache,
                **student_params,
            )
            figures.update(per_scenario_figures(name, runs))
            sections.append(student_seeds_markdown(runs))
    figures.update({f"target_{key}": value for key, value in TARGETS.items()})
    write_results(args.out, figures)
    student_flags = "".join(
        f" --{flag.replace('_', '-')} {' '.join(map(str, np.atleast_1d(getattr(args, flag))))}"
        for flag in (
            "seeds",
            "student_layers",
            "student_tail_size",
            "student_head_items",
            "student_serving_weight",
            "student_param",
        )
        if "students" in args.parts
        and getattr(args, flag) != parser.get_default(flag)
        and (flag != "student_head_items" or args.student_tail_size)
    )
    write_section(
        args.out,
        f"## Multi-scenario adaptation: {', '.join(args.parts)} (`benchmarks/multi_scenario.py`, {args.device})\n\n"
        f"`.venv/bin/python benchmarks/multi_scenario.py --device {args.device} --parts {' '.join(args.parts)}"
        f"{'' if args.datasets == DEFAULT_DATASETS else ' --datasets ' + ' '.join(args.datasets)}"
        f"{'' if args.epochs == parser.get_default('epochs') else f' --epochs {args.epochs}'}"
        f"{'' if args.content_rank is None else f' --content-rank {args.content_rank}'}"
        f"{'' if args.cold_draws == 1 else f' --cold-draws {args.cold_draws}'}"
        f"{'' if args.hybrids == list(HYBRIDS) else ' --hybrids ' + ' '.join(args.hybrids)}"
        f"{' --prior-param ' + ' '.join(args.prior_param) if args.prior_param and 'cold' in args.parts else ''}"
        f"{'' if len(args.scenarios) == len(GROUPS) else ' --scenarios ' + ' '.join(args.scenarios)}"
        f"{student_flags}"
        f"{'' if args.out == 'multi_scenario' else ' --out ' + args.out}` — {machine()}, {threads} torch threads. "
        "Rule, protocol and models are in the script's docstring.\n\n" + "\n\n".join(sections),
    )
    print(json.dumps(figures, indent=2))


PRIOR_MODE = {"content": "prior"}
PRIOR_HYBRID_SET = (*PRIOR_MODE, "prior_rank", "prior_l2", "epochs")  # what (e) itself sets for the prior hybrid


def named_params(
    parser: argparse.ArgumentParser,
    flag: str,
    algorithm: str,
    settings: Sequence[str],
    reserved: Sequence[str],
    given: dict,
    context: dict | None = None,
) -> dict:
    """``given`` plus a flag's ``NAME=VALUE`` settings, as ``algorithm`` takes them (checked with ``context``
    beside them; the parser exits on a bad one, or on a name in ``reserved`` or ``given``)."""
    params = dict(given)
    for setting in settings:
        name, equals, value = setting.partition("=")
        if not equals or name in (*reserved, *params):
            parser.error(f"{flag} {setting}: give NAME=VALUE, for a hyperparameter no other flag or part sets")
        params[name] = value
    try:
        checked = get_algorithm(algorithm)({**(context or {}), **params}).hparams
    except HyperparameterError as error:
        parser.error(f"{flag}: {error}")
    return {name: checked[name] for name in params}


def per_scenario_figures(dataset: str, results: dict[str, dict]) -> dict[str, float]:
    """``{scenario: {label: value}}`` as flat ``DATASET_SCENARIO_LABEL`` keys."""
    key = dataset.replace("-", "_")
    return {f"{key}_{scenario}_{label}": value for scenario, entry in results.items() for label, value in entry.items()}


# --- data ------------------------------------------------------------------------------------------------


def load(name: str, folder: Path) -> Dataset:
    if (folder / "u.data").exists():
        rows = np.loadtxt(folder / "u.data", dtype=np.int64)
        users, items, timestamps = rows[:, 0], rows[:, 1], rows[:, 3]
        titles, genres = {}, {}
        for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
            fields = line.split("|")
            titles[int(fields[0])] = fields[1]
            genres[int(fields[0])] = [g for g, flag in zip(ML100K_GENRES, fields[5:], strict=False) if flag == "1"]
    else:
        with open(folder / "ratings.csv") as handle:
            rows = [(int(r["userId"]), int(r["movieId"]), int(r["timestamp"])) for r in csv.DictReader(handle)]
        users, items, timestamps = (np.array(column) for column in zip(*rows, strict=True))
        titles, genres = {}, {}
        with open(folder / "movies.csv") as handle:
            for record in csv.DictReader(handle):
                titles[int(record["movieId"])] = record["title"]
                genres[int(record["movieId"])] = [g for g in record["genres"].split("|") if g != "(no genres listed)"]
    order = np.lexsort((np.arange(len(users)), timestamps))
    user_ids, user_index = np.unique(users[order], return_inverse=True)
    item_ids, item_index = np.unique(items[order], return_inverse=True)
    data = InteractionData(
        n_users=len(user_ids),
        n_items=len(item_ids),
        users=user_index.astype(np.int64),
        items=item_index.astype(np.int64),
        weights=np.ones(len(order), dtype=np.float32),
        timestamps=timestamps[order].astype(np.int64),
    )
    return Dataset(name, data, [titles[i] for i in item_ids], [genres[i] for i in item_ids])


def item_groups(dataset: Dataset) -> np.ndarray:
    """``(n_items,)`` group index of each film, by the rule in the docstring."""
    groups = np.full(dataset.data.n_items, len(GROUPS) - 1, dtype=np.int64)
    for item, genres in enumerate(dataset.genres):
        for index, (_, names) in enumerate(GROUPS):
            if names is not None and names.intersection(genres):
                groups[item] = index
                break
    return groups


# --- (a)-(d) ---------------------------------------------------------------------------------------------


class Timer:
    """Progress callback recording when each epoch ended and its figures."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.epochs: list[tuple[float, dict[str, float]]] = []

    def __call__(self, report: EpochReport) -> None:
        self.epochs.append((time.perf_counter() - self.start, report.validation))

    def summary(self, kept_epoch: int | None) -> dict[str, float]:
        """Times and figures; "best" is the ``kept_epoch`` whose weights the model kept (the last when None)."""
        times = [t for t, _ in self.epochs]
        best = min(kept_epoch or len(times), len(times)) - 1
        per_epoch = statistics.median(np.diff([0.0, *times])) if times else 0.0
        kept = self.epochs[best][1] if times else {}
        return {
            "seconds_per_epoch": per_epoch,
            "seconds_to_best": times[best] if times else 0.0,
            "seconds_total": times[-1] if times else 0.0,
            "epochs": len(times),
            "best_validation_ndcg": kept.get("ndcg@10", 0.0),  # the kept epoch's
            **({"best_teacher_agreement": kept[AGREEMENT]} if AGREEMENT in kept else {}),
        }


def fit(
    algorithm: str, train, validation, device: str, epochs: int, *, before=None, seed: int = FIRST_SEED, **params
) -> tuple:
    model = get_algorithm(algorithm)({"epochs": epochs, **params}, device=device, seed=seed)
    if before is not None:
        before(model)
    timer = Timer()
    model.fit(train, timer, validation=validation)
    summary = timer.summary(model.kept_epoch)
    say(f"    {algorithm}: {summary['epochs']} epochs, {summary['seconds_total']:.0f} s")
    return model, summary


def fine_tune(pretrained, items: np.ndarray, train, validation, device: str, epochs: int, seed: int = FIRST_SEED):
    """(b): SASRec started from the group's ``pretrained`` model (its ``items`` are the scenario's), then trained."""
    start = lambda model: model.initialize_from(pretrained, items)  # noqa: E731
    return fit("sasrec", train, validation, device, epochs, before=start, seed=seed)


def remembered(cache: Path | None, key: str, train: Callable[[], tuple]) -> tuple:
    """``train()``'s ``(model, summary)``, saved under ``cache / key``; or, when an earlier run saved that key
    there, the saved pair (``train`` is not called). Without a ``cache``, just ``train()``."""
    if cache is None:
        return train()
    folder = cache / key
    if (folder / "summary.json").exists():
        say(f"    {key}: from {folder}")
        return Recommender.load(folder), json.loads((folder / "summary.json").read_text())
    model, summary = train()
    model.save(folder)
    (folder / "summary.json").write_text(json.dumps(summary))  # written last: it marks a complete entry
    return model, summary


def cache_key(dataset: Dataset, role: str, device: str, epochs: int, seed: int = FIRST_SEED) -> str:
    """What a cached model depends on: its data and role, seed, epoch cap, device and torch's thread count."""
    return f"{dataset.name}-{role}-seed{seed}-epochs{epochs}-{device}-threads{torch.get_num_threads()}"


def say(message: str) -> None:
    """Progress on standard error (the figures go to standard output at the end)."""
    print(message, file=sys.stderr, flush=True)


def scores(model, train, test, validation) -> dict[str, float]:
    metrics = evaluate(model, train, test, ks=[10], exclude=validation)["metrics"]
    return {"ndcg": metrics["ndcg@10"], "recall": metrics["recall@10"]}


def ndcg_per_user(model, train, test, exclude) -> np.ndarray:
    """NDCG@10 of each user with held-out items, in ``test.users_with_items()`` order (the same for any model)."""
    return np.asarray(evaluate(model, train, test, ks=[10], exclude=exclude)["per_user"]["ndcg@10"])


class DomainView:
    """A group-level model seen through one scenario's users and items (and domain, for STAR)."""

    def __init__(self, model, users: np.ndarray, items: np.ndarray, domain: int | None) -> None:
        self.model, self.users, self.items, self.domain = model, users, items, domain
        self.n_items = len(items)

    def score(self, users) -> torch.Tensor:
        kwargs = {"domain": self.domain} if self.domain is not None else {}
        return self.model.score(self.users[np.asarray(users)], **kwargs)[:, torch.from_numpy(self.items)]


def latency_ms(model, n_users: int) -> float:
    users = np.arange(min(256, n_users))
    model.score(users)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        model.score(users)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def adaptation(dataset: Dataset, device: str, epochs: int) -> dict[str, dict]:
    data = dataset.data
    group_split = split_leave_last_out(data)
    groups = item_groups(dataset)
    event_group = groups[data.items]
    say("  the group (pretraining, STAR)")
    pretrained, pretrain_time = fit("sasrec", group_split.train, group_split.validation, device, epochs)
    star_train = dataclasses.replace(group_split.train, domains=event_group[group_split.train_events])
    star, star_time = fit(
        "star",
        star_train,
        group_split.validation,
        device,
        epochs,
        before=lambda model: model.set_domain_names([name for name, _ in GROUPS]),
    )
    results = {"_group": {"pretrain": pretrain_time, "star": star_time}}
    for index, (name, _) in enumerate(GROUPS):
        member, split, users, items = split_subset(data, group_split, event_group == index)
        say(f"  {name} (alone, fine-tuned, student)")
        train, validation, test = split.train, split.validation, split.test
        alone, alone_time = fit("sasrec", train, validation, device, epochs)
        tuned, tuned_time = fine_tune(pretrained, items, train, validation, device, epochs)
        student, student_time = fit_student(tuned, member.n_items, train, validation, device, epochs)
        results[name] = {
            "users": member.n_users,
            "items": member.n_items,
            "events": member.n_events,
            "alone": {**scores(alone, train, test, validation), **alone_time},
            "finetuned": {
                **scores(tuned, train, test, validation),
                **tuned_time,
                "parameters": tuned.parameter_count(),
                "latency_ms": latency_ms(tuned, member.n_users),
            },
            "star": scores(DomainView(star, users, items, index), train, test, validation),
            "student": {
                **scores(student, train, test, validation),
                **student_time,
                "parameters": student.parameter_count(),
                "latency_ms": latency_ms(student, member.n_users),
            },
        }
    return results


def pretrained_scenarios(dataset: Dataset, device: str, epochs: int, scenarios, cache: Path | None = None):
    """SASRec pretrained on the group's split (or found in ``cache``), then ``(name, member data, member split,
    member items, pretrained)`` for each of the named scenarios, in the rule's order."""
    data = dataset.data
    group_split = split_leave_last_out(data)
    event_group = item_groups(dataset)[data.items]
    say("  the group (pretraining)")
    pretrained, _ = remembered(
        cache,
        cache_key(dataset, "group", device, epochs),
        lambda: fit("sasrec", group_split.train, group_split.validation, device, epochs),
    )
    for index, (name, _) in enumerate(GROUPS):
        if name in scenarios:
            member, split, _, items = split_subset(data, group_split, event_group == index)
            yield name, member, split, items, pretrained


def teacher_init_ablation(
    dataset: Dataset, device: str, epochs: int, scenarios, cache: Path | None = None
) -> dict[str, dict]:
    """(b) per scenario (of those named), and its student (d) trained twice: item embeddings fresh, and from the
    teacher's."""
    results = {}
    for name, member, split, items, pretrained in pretrained_scenarios(dataset, device, epochs, scenarios, cache):
        say(f"  {name} (fine-tuned, students fresh and from the teacher's items)")
        train, validation, test = split.train, split.validation, split.test
        tuned, _ = remembered(
            cache,
            cache_key(dataset, f"{name}-finetuned", device, epochs),
            lambda: fine_tune(pretrained, items, train, validation, device, epochs),  # noqa: B023 (called at once)
        )
        teacher = ndcg_per_user(tuned, train, test, validation)
        entry = {"finetuned_ndcg": teacher.mean()}
        for label, teacher_init in (("student_fresh", False), ("student_teacher_init", True)):
            student, _ = fit_student(
                tuned, member.n_items, train, validation, device, epochs, teacher_init=teacher_init
            )
            per_user = ndcg_per_user(student, train, test, validation)
            entry[f"{label}_ndcg"] = per_user.mean()
            entry[f"{label}_share"] = entry[f"{label}_ndcg"] / entry["finetuned_ndcg"]
            interval = ratio_interval(teacher, per_user)  # 95%, over the scenario's test users
            entry[f"{label}_share_low"], entry[f"{label}_share_high"] = interval.low, interval.high
        entry["test_users"] = int(test.users_with_items().size)
        entry["student_embedding_size"] = student.hparams["embedding_size"]
        # Both students have the same shape: the last one stands for either in size and speed.
        entry["finetuned_parameters"], entry["student_parameters"] = tuned.parameter_count(), student.parameter_count()
        entry["finetuned_latency_ms"] = latency_ms(tuned, member.n_users)
        entry["student_latency_ms"] = latency_ms(student, member.n_users)
        results[name.replace("-", "_")] = {key: round(float(value), 5) for key, value in entry.items()}
    return results


def teacher_init_markdown(ablation: dict[str, dict]) -> str:
    rows = [
        (
            scenario.replace("_", "-"),
            f"{entry['test_users']:.0f}",
            f"{entry['finetuned_ndcg']:.4f}",
            f"{entry['student_embedding_size']:.0f}",
            *(
                f"{entry[f'{label}_ndcg']:.4f} ({entry[f'{label}_share']:.0%}; "
                f"{entry[f'{label}_share_low']:.0%}–{entry[f'{label}_share_high']:.0%})"
                for label in ("student_fresh", "student_teacher_init")
            ),
            f"{entry['student_parameters']:,.0f} vs {entry['finetuned_parameters']:,.0f}",
            f"{entry['student_latency_ms']:.1f} vs {entry['finetuned_latency_ms']:.1f}",
        )
        for scenario, entry in ablation.items()
    ]
    header = ("scenario", "test users", "(b) NDCG@10", "student size", "(d) fresh", "(d) from the teacher's items",
              "parameters (d) vs (b)", "latency ms / 256 users (d) vs (b)")  # fmt: skip
    return (
        "Student item embeddings, fresh or from the teacher's (NDCG@10; share of (b)'s, and its 95% bootstrap "
        "interval over the scenario's test users), and the student's size and scoring time against the "
        "teacher's (median of 5 timed calls scoring every item for up to 256 users):\n\n" + table(rows, header)
    )


def student_seeds(
    dataset: Dataset,
    device: str,
    epochs: int,
    scenarios,
    seeds: int,
    depths: Sequence[int],
    cache: Path | None = None,
    **student_params,
) -> dict[str, dict]:
    """(b) per scenario (of those named) and its student (d), fine-tuned and distilled under ``seeds`` seeds from
    one pretrained group model: each seed's share of (b)'s NDCG@10, and the share of the seeds' mean, with a
    paired bootstrap interval over the scenario's test users (each user's NDCG@10 averaged over the seeds).
    Each seed trains a student (with ``student_params``) of each of the ``depths`` (layer counts) and keeps the
    one with the best validation NDCG@10; the test ratings are read only for the kept one. The group model and
    the fine-tuned (b) are taken from ``cache`` when an earlier run saved them there."""
    results = {}
    for name, member, split, items, pretrained in pretrained_scenarios(dataset, device, epochs, scenarios, cache):
        train, validation, test = split.train, split.validation, split.test
        teachers, students, kept, entry = [], [], [], {}
        for seed in range(FIRST_SEED, FIRST_SEED + seeds):
            say(f"  {name}, seed {seed} (fine-tuned, student of {' or '.join(map(str, depths))} layers)")
            tuned, tuned_time = remembered(
                cache,
                cache_key(dataset, f"{name}-finetuned", device, epochs, seed),
                lambda: fine_tune(pretrained, items, train, validation, device, epochs, seed=seed),  # noqa: B023
            )
            entry[f"seed{seed}_finetuned_validation_ndcg"] = tuned_time["best_validation_ndcg"]
            candidates = []
            for layers in depths:
                student, student_time = fit_student(
                    tuned, member.n_items, train, validation, device, epochs, layers, seed=seed, **student_params
                )
                entry[f"seed{seed}_student_{layers}_layers_validation_ndcg"] = student_time["best_validation_ndcg"]
                if "best_teacher_agreement" in student_time:
                    agreement = student_time["best_teacher_agreement"]
                    entry[f"seed{seed}_student_{layers}_layers_teacher_agreement"] = agreement
                candidates.append((student, student_time))
            student, student_time = max(  # ties go to fewer layers
                candidates, key=lambda fitted: (fitted[1]["best_validation_ndcg"], -fitted[0].hparams["layers"])
            )
            kept.append(student)
            teachers.append(ndcg_per_user(tuned, train, test, validation))
            students.append(ndcg_per_user(student, train, test, validation))
            entry[f"seed{seed}_finetuned_ndcg"] = teachers[-1].mean()
            entry[f"seed{seed}_student_ndcg"] = students[-1].mean()
            entry[f"seed{seed}_student_share"] = students[-1].mean() / teachers[-1].mean()
            entry[f"seed{seed}_student_epochs"] = student_time["epochs"]
            entry[f"seed{seed}_student_layers"] = student.hparams["layers"]
        teacher, pupil = np.mean(teachers, axis=0), np.mean(students, axis=0)
        largest = max(kept, key=lambda model: model.parameter_count())  # the kept students' sizes differ by depth
        interval = ratio_interval(teacher, pupil)  # 95%, over the scenario's test users
        entry.update(
            seeds=seeds,
            test_users=int(test.users_with_items().size),
            finetuned_ndcg=teacher.mean(),
            student_ndcg=pupil.mean(),
            student_share=pupil.mean() / teacher.mean(),
            student_share_low=interval.low,
            student_share_high=interval.high,
            student_embedding_size=largest.hparams["embedding_size"],
            student_layers=largest.hparams["layers"],
            # a scenario with no more films than the head gives every film the full size: no tail
            student_tail_size=largest.hparams["tail_size"] * isinstance(largest.network.items, MixedItemEmbedding),
            student_head_items=largest.hparams["head_items"],
            student_serving_weight=largest.hparams["serving_weight"],
            student_head_by_teacher=largest.hparams["head_by"] == "teacher",
            student_select_by_teacher=largest.hparams["select_by"] == "teacher",
            student_cosine_schedule=largest.hparams["learning_rate_schedule"] == "cosine",
            **{f"student_{name}": largest.hparams[name] for name in STUDENT_TRAINING},
            finetuned_parameters=tuned.parameter_count(),
            student_parameters=largest.parameter_count(),
            finetuned_latency_ms=latency_ms(tuned, member.n_users),
            student_latency_ms=max(latency_ms(model, member.n_users) for model in kept),
        )
        results[name.replace("-", "_")] = {key: round(float(value), 5) for key, value in entry.items()}
    return results


def student_seeds_markdown(runs: dict[str, dict]) -> str:
    rows = []
    for scenario, entry in runs.items():
        seeds = range(FIRST_SEED, FIRST_SEED + int(entry["seeds"]))
        rows.append(
            (
                scenario.replace("_", "-"),
                f"{entry['test_users']:.0f}",
                f"{entry['student_embedding_size']:.0f} × {entry['student_layers']:.0f}"
                + (
                    f", tail {entry['student_tail_size']:.0f} beyond {entry['student_head_items']:.0f} films"
                    if entry.get("student_tail_size")
                    else ""
                )
                + (
                    f", serving weight {entry['student_serving_weight']:g}"
                    if entry.get("student_serving_weight")
                    else ""
                )
                + (
                    ", head by the teacher's lists"
                    if entry.get("student_head_by_teacher") and entry.get("student_tail_size")
                    else ""
                )
                + (", epoch by agreement with the teacher" if entry.get("student_select_by_teacher") else "")
                + (", cosine learning-rate schedule" if entry.get("student_cosine_schedule") else "")
                + "".join(
                    f", {name.replace('_', ' ')} {entry[f'student_{name}']:g}"
                    for name in STUDENT_TRAINING
                    if f"student_{name}" in entry and entry[f"student_{name}"] != STUDENT_DEFAULTS[name]
                ),
                ", ".join(
                    f"{entry[f'seed{seed}_student_share']:.0%} ({entry[f'seed{seed}_student_layers']:.0f})"
                    for seed in seeds
                ),
                ", ".join(agreement_text(entry, seed) for seed in seeds),
                f"{entry['finetuned_ndcg']:.4f}",
                f"{entry['student_ndcg']:.4f}",
                f"{entry['student_share']:.0%} ({entry['student_share_low']:.0%}–{entry['student_share_high']:.0%})",
                f"{entry['student_parameters']:,.0f} vs {entry['finetuned_parameters']:,.0f}",
                f"{entry['student_latency_ms']:.1f} vs {entry['finetuned_latency_ms']:.1f}",
            )
        )
    header = ("scenario", "test users", "largest student, size × layers", "(d) share of (b), each seed (layers)",
              "(d)'s agreement with (b)'s top 10, each seed", "(b) NDCG@10, mean", "(d) NDCG@10, mean",
              "(d) share of (b), mean (95% interval)", "parameters (d) vs (b)",
              "latency ms / 256 users (d) vs (b)")  # fmt: skip
    return (
        "The student against its teacher over several seeds (each seed fine-tunes (b) from the same pretrained "
        "group model and distils (d) from it, keeping of the students of each depth tried the one best on the "
        "validation ratings; the mean share is the seeds' mean (d) over their mean (b), its interval resamples the "
        "scenario's test users), each kept student's agreement with its (b) (the share of (b)'s top ten after each "
        "user's training history that the student's top ten hold, training films excluded; where the student keeps "
        "its epoch by it), the largest kept student's size against the last seed's (b), and the slowest kept "
        "student's scoring time (median of 5 timed calls scoring every item for up to 256 users):\n\n"
        + table(rows, header)
    )


def agreement_text(entry: dict, seed: int) -> str:
    """The share of (b)'s top ten after the users' histories that the seed's kept student holds, where measured
    (select_by teacher)."""
    agreement = entry.get(f"seed{seed}_student_{entry[f'seed{seed}_student_layers']:.0f}_layers_teacher_agreement")
    return "–" if agreement is None else f"{agreement:.0%}"


def fit_student(
    teacher, n_items: int, train, validation, device: str, epochs: int, layers: int = 1, *, seed=FIRST_SEED, **params
) -> tuple:
    """(d): a student of ``teacher`` (same items) with hyperparameters ``params``, as large as a quarter of the
    teacher's parameters allows."""
    return fit(
        "distill",
        train,
        validation,
        device,
        epochs,
        seed=seed,
        layers=layers,
        embedding_size=student_size(teacher.parameter_count(), n_items, layers, **params),
        before=lambda model: model.attach_teacher(teacher, np.arange(n_items)),
        # a small student's validation score is flat for its first epochs: patience 30 unless params say otherwise
        **{"early_stopping_patience": 30, **params},
    )


def student_size(teacher_parameters: int, n_items: int, layers: int = 1, **params) -> int:
    """The student's embedding size: the largest multiple of its attention heads, from 32 down (and above a
    ``tail_size`` in ``params``), that keeps it within a quarter of the teacher's parameters (with many items the
    item table dominates both, so the size must shrink with the item count)."""
    student = get_algorithm("distill")
    heads = student().hparams["heads"]
    smallest = max(4, params.get("tail_size", 0) + 1)  # the smallest embedding size a model takes is 4
    sizes = range(32 // heads * heads, smallest - 1, -heads)
    for size in sizes:
        if student({"embedding_size": size, "layers": layers, **params}).parameter_count_for(n_items) <= (
            teacher_parameters / 4
        ):
            return size
    return sizes[-1]


# --- (e) cold items --------------------------------------------------------------------------------------


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
HYBRIDS = {"prior": "prior_hybrid", "side": "hybrid"}  # --hybrids name: the figures' label


class RandomTies:
    """A model whose equal scores are ordered at random (a fixed random order per seed) instead of by index."""

    def __init__(self, model, seed: int) -> None:
        self.model, self.n_items = model, model.n_items
        order = np.random.default_rng(seed).permutation(model.n_items).astype(np.float32)
        self.offset = torch.from_numpy(order / model.n_items * 1e-4)

    def score(self, users) -> torch.Tensor:
        scores = self.model.score(users)
        return scores + self.offset.to(scores.device)


# --- report ------------------------------------------------------------------------------------------------


def flatten(name: str, results: dict, draws: list[dict]) -> dict:
    """Flat figures; ``draws`` are (e)'s results per draw of the cold films (the first is the reported one)."""
    key = name.replace("-", "_")
    cold = draws[0] if draws else {}
    flat = {}
    for scenario, entry in results.items():
        for model, values in entry.items():
            if isinstance(values, dict):
                for metric, value in values.items():
                    flat[f"{key}_{scenario.replace('-', '_').strip('_')}_{model}_{metric}"] = round(float(value), 5)
            else:
                flat[f"{key}_{scenario.replace('-', '_')}_{model}"] = values
    flat.update({f"{key}_cold_{metric}": round(float(value), 5) for metric, value in cold.items()})
    for index, draw in enumerate(draws[1:], start=1):
        figures = [metric for metric in DRAW_FIGURES if metric in draw]
        flat.update({f"{key}_cold_draw{index}_{metric}": round(float(draw[metric]), 5) for metric in figures})
    for hybrid in trained_hybrids(cold) if len(draws) > 1 else ():
        ratios = [draw[f"{hybrid}_ndcg"] / draw["popularity_ndcg"] for draw in draws]
        flat[f"{key}_{hybrid}_over_popularity_cold_mean_of_draws"] = round(statistics.mean(ratios), 3)
        flat[f"{key}_{hybrid}_over_popularity_cold_min_of_draws"] = round(min(ratios), 3)
    members = {s: e for s, e in results.items() if not s.startswith("_")}
    if members:
        smallest = min(members, key=lambda s: members[s]["events"])
        gains = {s: e["finetuned"]["ndcg"] / e["alone"]["ndcg"] - 1 for s, e in members.items() if e["alone"]["ndcg"]}
        flat[f"{key}_finetune_gain_smallest"] = round(gains.get(smallest, 0.0), 4)
        flat[f"{key}_finetune_worst_loss"] = round(min(gains.values()), 4)
        flat[f"{key}_student_share_of_ndcg_min"] = round(
            min(e["student"]["ndcg"] / e["finetuned"]["ndcg"] for e in members.values() if e["finetuned"]["ndcg"]), 4
        )
        flat[f"{key}_student_parameter_share_max"] = round(
            max(e["student"]["parameters"] / e["finetuned"]["parameters"] for e in members.values()), 4
        )
    for hybrid in trained_hybrids(cold) if cold.get("popularity_ndcg") else ():
        flat[f"{key}_{hybrid}_over_popularity_cold"] = round(cold[f"{hybrid}_ndcg"] / cold["popularity_ndcg"], 3)
    return flat


def markdown(name: str, results: dict, draws: list[dict]) -> str:
    cold = draws[0] if draws else {}
    rows = []
    for scenario, entry in results.items():
        if scenario.startswith("_"):
            continue
        row = [f"{scenario} ({entry['events']:,} events)"]
        for model in ("alone", "finetuned", "star", "student"):
            row.append(f"{entry[model]['ndcg']:.4f} / {entry[model]['recall']:.4f}")
        row.append(f"{entry['student']['parameters']:,} vs {entry['finetuned']['parameters']:,}")
        row.append(f"{entry['student']['latency_ms']:.1f} vs {entry['finetuned']['latency_ms']:.1f}")
        rows.append(tuple(row))
    header = (
        "scenario",
        "(a) alone",
        "(b) pretrain + fine-tune",
        "(c) STAR",
        "(d) student of (b)",
        "parameters (d) vs (b)",
        "latency ms / 256 users (d) vs (b)",
    )
    text = f"### {name}"
    if results:
        group = results["_group"]
        text += (
            "\n\nNDCG@10 / Recall@10 per scenario.\n\n"
            + table(rows, header)
            + f"\n\nGroup pretraining: {group['pretrain']['epochs']} epochs, "
            f"{group['pretrain']['seconds_per_epoch']:.2f} s/epoch; STAR: {group['star']['epochs']} epochs, "
            f"{group['star']['seconds_per_epoch']:.2f} s/epoch."
        )
    if cold:
        text += f"\n\n{cold_markdown(cold)}"
        side = "hybrid" in trained_hybrids(cold)
        if len(draws) > 1:
            text += f"\n\nThe same on {len(draws)} draws of the cold films (the first is the one above):\n\n" + table(
                [
                    (
                        str(index),
                        f"{draw['popularity_ndcg']:.4f}",
                        f"{draw['content_ndcg']:.4f}",
                        f"{draw['content_ridge_ndcg']:.4f} (rank {draw['content_ridge_rank']}, "
                        f"l2 {draw['content_ridge_l2']:g})",
                        *(
                            f"{draw[f'{hybrid}_ndcg']:.4f} ({draw[f'{hybrid}_ndcg'] / draw['popularity_ndcg']:.2f}×"
                            f"{interval_text(draw, hybrid)})"
                            for hybrid in trained_hybrids(cold)
                        ),
                        *([f"{draw['hybrid_content_rank']}, {draw['hybrid_epochs']}"] if side else []),
                    )
                    for index, draw in enumerate(draws)
                ],
                ("draw", "popularity", "content", "content ridge",
                 *(HYBRID_TITLES[hybrid] for hybrid in trained_hybrids(cold)),
                 *(["side: chosen rank, epochs"] if side else [])),
            )  # fmt: skip
    return text


def cold_markdown(cold: dict) -> str:
    """(e) on one draw: each model's NDCG@10 on the cold films, and on the warm validation where it has one."""

    def warm(label: str) -> tuple[str, str, str]:
        return (f"{cold[f'{label}_warm_validation_ndcg']:.4f}", f"{cold[f'{label}_few_event_films_recall']:.3f}",
                f"{cold[f'{label}_cold_share_of_top10']:.1%}")  # fmt: skip

    def cold_ndcg(label: str, interval: bool = False) -> tuple[str, str]:
        ratio = f"{cold[f'{label}_ndcg'] / cold['popularity_ndcg']:.2f}×"
        return f"{cold[f'{label}_ndcg']:.4f}", ratio + (interval_text(cold, label) if interval else "")

    rows = [
        ("popularity", f"{cold['popularity_ndcg']:.4f}", "1.00×", "", "", "", f"cold films tie: mean of {TIE_ORDERS} "
         f"random tie orders (by item index {cold['popularity_index_ties_ndcg']:.4f})"),
        ("content (profile mean)", *cold_ndcg("content"), "", "", "", "the platform's defaults"),
        ("content ridge", *cold_ndcg("content_ridge"), "", "", "",
         f"rank {cold['content_ridge_rank']}, l2 {cold['content_ridge_l2']:g}, chosen on the pseudo-cold films "
         f"({cold['fold_content_ridge_ndcg']:.4f} there)"),
        ("SASRec, no content", *cold_ndcg("sasrec"), *warm("sasrec"), "early-stopped on the warm validation"),
    ]  # fmt: skip
    if "prior_hybrid" in trained_hybrids(cold):
        given = [
            f"{name} {cold[f'prior_hybrid_{name}']:g}" for name in PRIOR_SETTINGS if f"prior_hybrid_{name}" in cold
        ]
        folds = cold.get("prior_hybrid_prior_folds", SASREC_DEFAULTS["prior_folds"])
        rows.append(("**hybrid, content prior**", *cold_ndcg("prior_hybrid", interval=True), *warm("prior_hybrid"),
                     "SASRec plus the content ridge above as a prior"
                     f"{' (cross-fitted while training)' if folds > 1 else ''}; early-stopped on the warm validation"
                     f"{''.join(f'; {text}' for text in given)}"))  # fmt: skip
    if "hybrid" in trained_hybrids(cold):
        rows.append(("hybrid, content side", *cold_ndcg("hybrid", interval=True), *warm("hybrid"),
                     f"content_rank {cold['hybrid_content_rank']}, {cold['hybrid_epochs']} epochs, chosen on the "
                     f"pseudo-cold films ({cold['fold_cold_ndcg']:.4f} there; at that epoch of the pseudo-cold "
                     f"fitting the warm validation was {cold['fold_warm_validation_ndcg']:.4f} against "
                     f"{cold['fold_warm_validation_ndcg_best']:.4f} at its best warm epoch)"))  # fmt: skip
    header = ("model", "cold films NDCG@10", "vs popularity", "warm validation NDCG@10",
              "few-event films recall@10", "cold films in the warm top 10", "settings")  # fmt: skip
    return (
        f"Cold films ({cold['cold_items']} films, {cold['cold_events']:,} ratings held out of training; ranked among "
        f"the cold films only, for the users who rated them). Warm validation: each user's last rating of a warm "
        f"film, ranked among every film; few-event films: the {cold['few_event_films_validation_ratings']:.0f} "
        "validation ratings of films with at most 5 training ratings, and the share of them in the top 10; cold "
        f"films in the warm top 10: their share of those users' top 10 among every film ({cold['cold_items']} "
        "of the catalogue are cold).\n\n" + table(rows, header)
    )


SASREC_DEFAULTS = {param.name: param.default for param in get_algorithm("sasrec").params}
PRIOR_SETTINGS = [name for name in SASREC_DEFAULTS if name not in PRIOR_HYBRID_SET]
HYBRID_TITLES = {"prior_hybrid": "hybrid, content prior", "hybrid": "hybrid, content side"}


def trained_hybrids(cold: dict) -> list[str]:
    """The labels of the hybrids (e) trained on a draw (``--hybrids``)."""
    return [label for label in HYBRIDS.values() if f"{label}_ndcg" in cold]


def interval_text(cold: dict, label: str = "hybrid") -> str:
    """The 95% bootstrap interval over the tested users of a model's ratio to popularity, as text."""
    low, high = cold[f"{label}_over_popularity_low"], cold[f"{label}_over_popularity_high"]
    return f", 95% interval over users {low:.2f}–{high:.2f}×"


if __name__ == "__main__":
    main()
