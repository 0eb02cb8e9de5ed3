"""Run RecBole 1.2.1's Pop, ItemKNN, BPR and EASE (or SASRec and GRU4Rec) on MovieLens 100K; print one JSON document.

Runs inside benchmarks/peers/.venv-recbole (see setup_recbole.sh), never in the project's venv:

    .venv-recbole/bin/python run_recbole.py --data u.data [--models Pop,EASE] [--split-out split.npz]
    .venv-recbole/bin/python run_recbole.py --data u.data --protocol sequential [--epochs SASRec=10,GRU4Rec=10]

Protocol, in RecBole's own keys: ratings >= 3 kept (``val_interval``), per-user random 8:1:1 split
(``RS``, ``RO``, ``group_by: user``), full ranking with the user's training items (and, for the
test set, validation items) excluded, K = 10, seed 2020. BPR early-stops on validation NDCG@10.

"Training time" is what the model needs before it can rank: its constructor (Pop, ItemKNN and
EASE do all their work there) plus ``trainer.fit``, which includes RecBole's per-epoch validation
and checkpointing. Data loading and the trainer's own setup are reported apart. BPR is trained once
per ``--bpr-seeds`` seed (same split) and its metrics and times averaged; the closed-form models are
trained ``--repeats`` times for timing (fastest kept) and tested once.

RecBole writes atomic files, checkpoints (saved/) and logs (log/) relative to the working
directory, so everything happens in a temporary directory that is removed afterwards.
``--split-out`` writes RecBole's exact train / validation / test (user, item) pairs, in raw
MovieLens ids, so the other side of the comparison can be evaluated on the same draw.

``--split-in split.npz`` (``train_users``, ``train_items``, ``valid_*``, ``test_*``: ids as text) has the general
models trained and tested on that split instead of drawing one (RecBole's ``benchmark_filename``): the other side
of the comparison hands over its own draw (``--data`` is then not read).

``--protocol sequential`` runs SASRec and GRU4Rec instead: every interaction kept, each user's
events in time order, the last one for test and the one before for validation (``LS``,
``valid_and_test``), full ranking over every item (RecBole masks no history item for sequential
models), softmax cross-entropy over all items (``loss_type: CE``), at most 50 items read. Each
model is trained once, with ``--epochs`` capping its epochs and ``--stopping-step`` its patience;
per epoch the training seconds, the validation NDCG@10 and the time since ``fit`` started are
recorded. ``--split-out`` then writes each user's training sequence (in RecBole's order) and
validation and test item; with ``--split-only`` that is all it does (no model is trained).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

# RecBole reloads its own best checkpoint with torch.load(), which unpickles the whole Config;
# since torch 2.6 torch.load defaults to weights_only=True and refuses that. The files are ones
# RecBole has just written into our temp dir, so the old behaviour is safe. Set before torch loads.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender import Pop
from recbole.utils import get_model, get_trainer, init_logger, init_seed

from epoch_timing import training_pass_seconds  # beside this script

# RecBole 1.2.1 predates pandas 2.2 and torch 2.4: their deprecation notices would drown the output.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")


class PopFixed(Pop):
    """RecBole's Pop with the upstream fix for its counting bug (RecBole issues #1844 and #2198, PR #2199).

    Stock Pop does ``item_cnt[item] = item_cnt[item] + 1`` per training batch: an item that occurs
    several times in a batch gains 1, not its count, so with 2048-row batches popular items saturate
    at the number of batches. Accumulating with index_add_ counts every interaction.
    """

    def calculate_loss(self, interaction):
        item = interaction[self.ITEM_ID]
        self.item_cnt.index_add_(0, item, torch.ones_like(item).unsqueeze(1))
        self.max_cnt = torch.max(self.item_cnt, dim=0)[0]
        return torch.nn.Parameter(torch.zeros(1)).to(self.device)


MODELS = ("Pop", "PopFixed", "ItemKNN", "BPR", "EASE")
SEQUENTIAL_MODELS = ("SASRec", "GRU4Rec")
# Default epoch caps for the sequential models: on 2 CPU cores an uncapped SASRec would run for hours.
SEQUENTIAL_EPOCHS = {"SASRec": 10, "GRU4Rec": 10}
SEQUENTIAL_STOPPING_STEP = 3
DATASET = "ml-100k"
BENCHMARK_PARTS = ("train", "valid", "test")
SEED = 2020
METRICS = ("ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10")
TIMES = ("train_seconds", "construct_seconds", "fit_seconds", "trainer_setup_seconds")

PROTOCOL = {
    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "val_interval": {"rating": "[3,inf)"},
    "user_inter_num_interval": None,
    "item_inter_num_interval": None,
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "mode": "full", "group_by": "user"},
    "metrics": ["NDCG", "Recall", "MRR", "Hit", "Precision"],
    "topk": [10],
    # RecBole's default is MRR@10; the platform early-stops on NDCG@10, so both sides use that.
    "valid_metric": "NDCG@10",
    "metric_decimal_place": 6,
    "seed": SEED,
    "reproducibility": True,
    "use_gpu": False,
    "show_progress": False,
    "state": "WARNING",
}

# Written out although they are RecBole 1.2.1's defaults (properties/overall.yaml, model/*.yaml).
# Pop, ItemKNN and EASE never use negatives; for Pop they would even count, since its
# calculate_loss counts every item id in the batch and a pointwise batch carries the sampled
# negatives as rows. So negative sampling is off for those three.
NO_NEGATIVES = {"train_neg_sample_args": None}
MODEL_CONFIG = {
    "Pop": NO_NEGATIVES,
    "PopFixed": NO_NEGATIVES,
    "ItemKNN": {**NO_NEGATIVES, "k": 100, "shrink": 0.0, "knn_method": "item"},
    "EASE": {**NO_NEGATIVES, "reg_weight": 250.0},
    "BPR": {
        "embedding_size": 64,
        "learner": "adam",
        "learning_rate": 0.001,
        "weight_decay": 0.0,
        "train_batch_size": 2048,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "epochs": 300,
        "eval_step": 1,
        "stopping_step": 10,
    },
}
MODEL_CLASSES = {"PopFixed": PopFixed}
REPORTED_KEYS = ("seed", "val_interval", "eval_args", "valid_metric", "train_batch_size")

SEQUENTIAL_PROTOCOL = {
    **PROTOCOL,
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "val_interval": None,  # every interaction kept
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_neg_sample_args": None,  # CE scores every item; no negatives
    "learner": "adam",
    "learning_rate": 0.001,
    "train_batch_size": 2048,
    "weight_decay": 0.0,
    "eval_step": 1,
}
# RecBole 1.2.1's defaults (properties/model/SASRec.yaml, GRU4Rec.yaml), written out.
SEQUENTIAL_CONFIG = {
    "SASRec": {
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": 0.5,
        "attn_dropout_prob": 0.5,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
    },
    "GRU4Rec": {"embedding_size": 64, "hidden_size": 128, "num_layers": 1, "dropout_prob": 0.3, "loss_type": "CE"},
}
SEQUENTIAL_REPORTED_KEYS = (
    *REPORTED_KEYS,
    "MAX_ITEM_LIST_LENGTH",
    "train_neg_sample_args",
    "learning_rate",
    "epochs",
    "stopping_step",
)


def write_atomic_file(ratings: Path, directory: Path) -> None:
    """``u.data`` (tab-separated user, item, rating, timestamp) as RecBole's ``ml-100k.inter``."""
    directory.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    (directory / f"{DATASET}.inter").write_text(header + ratings.read_text())


def write_split_files(split: Path, directory: Path) -> None:
    """A split handed over (``--split-in``) as RecBole's pre-split atomic files ``ml-100k.{train,valid,test}.inter``;
    every pair is kept (rating 5), as the other side already dropped ratings below 3."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = np.load(split, allow_pickle=False)
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    for part in BENCHMARK_PARTS:
        pairs = zip(arrays[f"{part}_users"], arrays[f"{part}_items"], strict=True)
        rows = (f"{user}\t{item}\t5\t0" for user, item in pairs)
        (directory / f"{DATASET}.{part}.inter").write_text(header + "\n".join(rows) + "\n")


def build_config(model: str, data_root: Path, bpr_epochs: int | None, *, presplit: bool = False) -> Config:
    overrides = {**PROTOCOL, **MODEL_CONFIG[model], "checkpoint_dir": str(data_root / "saved")}
    if presplit:
        overrides["benchmark_filename"] = list(BENCHMARK_PARTS)
    if bpr_epochs is not None and model == "BPR":
        overrides["epochs"] = bpr_epochs
    config = Config(model=MODEL_CLASSES.get(model, model), dataset=DATASET, config_dict=overrides)
    # For the dataset name "ml-100k" Config points data_path at the copy bundled inside the
    # package, whatever config_dict says; read the atomic file written from u.data instead.
    config["data_path"] = str(data_root / DATASET)
    return config


def build_sequential_config(model: str, data_root: Path, epochs: int, stopping_step: int) -> Config:
    """SASRec or GRU4Rec under the leave-last-out protocol, at most ``epochs`` epochs."""
    overrides = {
        **SEQUENTIAL_PROTOCOL,
        **SEQUENTIAL_CONFIG[model],
        "epochs": epochs,
        "stopping_step": stopping_step,
        "checkpoint_dir": str(data_root / "saved"),
    }
    config = Config(model=model, dataset=DATASET, config_dict=overrides)
    config["data_path"] = str(data_root / DATASET)  # as in build_config
    return config


def run_model(
    model: str, data_root: Path, *, bpr_epochs: int | None, runs: list[int], presplit: bool = False
) -> tuple[dict, tuple]:
    """Train and test one model once per seed in ``runs``; returns its figures and (train, valid, test) datasets.

    The split is always drawn with ``SEED``; ``runs`` seeds what comes after (initialisation, batch
    order, negative sampling). BPR is run with several seeds and its metrics and time averaged, since
    one seed's early stopping varies by a few percent. The closed-form models are deterministic: they
    are run repeatedly with one seed for timing only, the fastest run kept, and tested once.
    """
    started = time.perf_counter()
    config = build_config(model, data_root, bpr_epochs, presplit=presplit)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - started
    # The first get_model() imports every RecBole model module (about a second): not training.
    model_class = MODEL_CLASSES.get(model) or get_model(config["model"])
    trainer_class = get_trainer(config["MODEL_TYPE"], config["model"])
    results = [
        _train_and_test(
            model_class,
            trainer_class,
            config,
            (train_data, valid_data, test_data),
            seed,
            test=model == "BPR" or index == 0,
        )
        for index, seed in enumerate(runs)
    ]
    tested = [result for result in results if "test" in result]
    timed = results if model == "BPR" else [min(results, key=lambda result: result["train_seconds"])]
    figures = {
        "test": {name: statistics.mean(result["test"][name] for result in tested) for name in METRICS},
        "valid": {name: statistics.mean(result["valid"][name] for result in tested) for name in METRICS},
        **{key: statistics.mean(result[key] for result in timed) for key in TIMES},
        "epochs_run": statistics.mean(result["epochs_run"] for result in tested),
        "runs": results,
        "data_seconds": data_seconds,
        "total_seconds": time.perf_counter() - started,
        "config": {key: _plain(config[key]) for key in (*REPORTED_KEYS, *MODEL_CONFIG[model])},
    }
    return figures, (train_data._dataset, valid_data._dataset, test_data._dataset)


def _train_and_test(model_class, trainer_class, config: Config, data: tuple, seed: int, *, test: bool) -> dict:
    train_data, valid_data, test_data = data
    init_seed(seed, config["reproducibility"])
    build_started = time.perf_counter()
    recommender = model_class(config, train_data._dataset).to(config["device"])
    built = time.perf_counter()
    # Not training: the trainer's constructor opens a TensorBoard writer (the first one imports
    # TensorBoard, over a second) and builds the optimizer.
    trainer = trainer_class(config, recommender)
    fit_started = time.perf_counter()
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_ended = time.perf_counter()
    result = {
        "seed": seed,
        "train_seconds": (built - build_started) + (fit_ended - fit_started),
        "construct_seconds": built - build_started,
        "fit_seconds": fit_ended - fit_started,
        "trainer_setup_seconds": fit_started - built,
        "epochs_run": len(trainer.train_loss_dict),
    }
    if test:
        scores = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        result["test"] = {name: float(scores[name]) for name in METRICS}
        result["valid"] = {name: float(best_valid[name]) for name in METRICS}
    return result


def prepare_sequential(model: str, data_root: Path, epochs: int, stopping_step: int) -> tuple[Config, tuple]:
    """``model``'s configuration and its (train, valid, test) data loaders under the leave-last-out protocol."""
    config = build_sequential_config(model, data_root, epochs, stopping_step)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    return config, tuple(data_preparation(config, create_dataset(config)))


def run_sequential_model(model: str, data_root: Path, *, epochs: int, stopping_step: int) -> tuple[dict, tuple]:
    """Train SASRec or GRU4Rec once, timing every epoch; returns its figures and (train, valid, test) datasets.

    Per epoch: the seconds ``_train_epoch`` took (training only), the validation NDCG@10, and the
    seconds since ``fit`` started when the epoch ended (after validation and checkpointing, through
    RecBole's own ``callback_fn``). The best epoch is RecBole's: the last whose validation score was
    at least the best so far; its checkpoint is the one tested.
    """
    started = time.perf_counter()
    config, (train_data, valid_data, test_data) = prepare_sequential(model, data_root, epochs, stopping_step)
    data_seconds = time.perf_counter() - started
    model_class = get_model(config["model"])
    trainer_class = get_trainer(config["MODEL_TYPE"], config["model"])
    init_seed(config["seed"], config["reproducibility"])
    build_started = time.perf_counter()
    recommender = model_class(config, train_data._dataset).to(config["device"])
    built = time.perf_counter()
    trainer = trainer_class(config, recommender)
    clock = EpochClock(trainer)
    fit_started = time.perf_counter()
    clock.start()
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=clock.callback)
    fit_seconds = time.perf_counter() - fit_started
    scores = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    per_epoch = [
        {"train_seconds": train, "valid_ndcg@10": valid, "ended_at": ended}
        for train, (valid, ended) in zip(clock.train_seconds, clock.valid, strict=True)
    ]
    best = _best_epoch([epoch["valid_ndcg@10"] for epoch in per_epoch])
    figures = {
        "test": {name: float(scores[name]) for name in METRICS},
        "valid": {name: float(best_valid[name]) for name in METRICS},
        "seconds_per_epoch": statistics.median(clock.train_seconds),
        "seconds_to_best": per_epoch[best]["ended_at"],
        "best_epoch": best + 1,
        "fit_seconds": fit_seconds,
        "train_seconds": (built - build_started) + fit_seconds,
        "construct_seconds": built - build_started,
        "trainer_setup_seconds": fit_started - built,
        "epochs_run": len(per_epoch),
        "max_epochs": epochs,
        "stopping_step": stopping_step,
        "epochs": per_epoch,
        "data_seconds": data_seconds,
        "total_seconds": time.perf_counter() - started,
        "config": {key: _plain(config[key]) for key in (*SEQUENTIAL_REPORTED_KEYS, *SEQUENTIAL_CONFIG[model])},
    }
    return figures, (train_data._dataset, valid_data._dataset, test_data._dataset)


class EpochClock:
    """Times a RecBole trainer's epochs: wraps its ``_train_epoch``; pass :meth:`callback` as fit's ``callback_fn``.

    ``train_seconds[e]`` is epoch ``e``'s training pass alone; ``valid[e]`` its validation score and
    the seconds from :meth:`start` to the end of the epoch (validation and checkpoint included).
    """

    def __init__(self, trainer) -> None:
        self.train_seconds = training_pass_seconds(trainer)
        self.valid: list[tuple[float, float]] = []
        self.started = time.perf_counter()

    def start(self) -> None:
        self.started = time.perf_counter()

    def callback(self, epoch_idx: int, valid_score: float) -> None:
        self.valid.append((float(valid_score), time.perf_counter() - self.started))


def _best_epoch(scores: list[float]) -> int:
    """Index of the epoch RecBole keeps: the last one scoring at least the best before it (its ``>=``)."""
    best = 0
    for index, score in enumerate(scores):
        if score >= scores[best]:
            best = index
    return best


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def raw_pairs(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A RecBole dataset's (user, item) pairs as ``(n,)`` int64 arrays of raw MovieLens ids."""
    users = dataset.inter_feat[dataset.uid_field].numpy()
    items = dataset.inter_feat[dataset.iid_field].numpy()
    raw_users = dataset.id2token(dataset.uid_field, users).astype(np.int64)
    raw_items = dataset.id2token(dataset.iid_field, items).astype(np.int64)
    return raw_users, raw_items


def save_split(path: Path, datasets: tuple, *, sequential: bool = False) -> None:
    """Write the (user, item) pairs of each part (sequential: :func:`sequences_of`) to ``path``."""
    if sequential:
        arrays = sequences_of(datasets)
    else:
        arrays = {}
        for part, dataset in zip(("train", "valid", "test"), datasets, strict=True):
            arrays[f"{part}_users"], arrays[f"{part}_items"] = raw_pairs(dataset)
    np.savez_compressed(path, **arrays)


def sequences_of(datasets: tuple) -> dict[str, np.ndarray]:
    """Each user's training sequence and validation and test item from RecBole's sequential split, raw ids.

    RecBole augments before splitting: a user with events ``i1 .. in`` (sorted by user, then time,
    stably) becomes rows ``<i1> | i2``, ``<i1, i2> | i3``, ..., and the last row goes to test, the one
    before to validation. The training sequence is so ``i1`` followed by the training rows'
    targets: ``i1 .. i(n-2)``. Checked against the validation and test rows' own item lists.
    Returns ``train_users`` / ``train_items`` (in sequence order, user by user) and
    ``valid_users`` / ``valid_items``, ``test_users`` / ``test_items`` (one row per user).
    """
    train, valid, test = datasets
    users, targets = raw_pairs(train)
    item_lists = train.inter_feat[train.iid_field + train.config["LIST_SUFFIX"]].numpy()
    firsts = train.id2token(train.iid_field, item_lists[:, 0]).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    if len(starts) != len(np.unique(users)):
        raise RuntimeError("RecBole's training rows are not grouped by user")
    arrays = {
        "train_users": np.insert(users, starts, users[starts]),
        "train_items": np.insert(targets, starts, firsts[starts]),
    }
    for part, dataset in (("valid", valid), ("test", test)):
        arrays[f"{part}_users"], arrays[f"{part}_items"] = raw_pairs(dataset)
    _check_sequences(arrays, valid, test)
    return arrays


def _check_sequences(arrays: dict[str, np.ndarray], valid, test) -> None:
    """Raise unless every user's validation (test) row reads the end of their training sequence (plus validation)."""
    length = valid.config["MAX_ITEM_LIST_LENGTH"]
    users, items = arrays["train_users"], arrays["train_items"]
    sequences = {user: items[users == user] for user in np.unique(users)}
    valid_item = dict(zip(arrays["valid_users"], arrays["valid_items"], strict=True))
    for dataset, extra in ((valid, {}), (test, valid_item)):
        row_users, _ = raw_pairs(dataset)
        lists = dataset.inter_feat[dataset.iid_field + dataset.config["LIST_SUFFIX"]].numpy()
        lengths = dataset.inter_feat[dataset.config["ITEM_LIST_LENGTH_FIELD"]].numpy()
        if len(row_users) != len(sequences) or len(np.unique(row_users)) != len(row_users):
            raise RuntimeError("RecBole's split does not hold one validation and one test row per user")
        for user, row, row_length in zip(row_users, lists, lengths, strict=True):
            expected = sequences[user] if user not in extra else np.append(sequences[user], extra[user])
            seen = dataset.id2token(dataset.iid_field, row[:row_length]).astype(np.int64)
            if not np.array_equal(seen, expected[-length:]):
                raise RuntimeError(f"user {user}: RecBole's item list differs from the reconstructed sequence")


def same_split(first: tuple, second: tuple) -> bool:
    """Whether two models saw the same draw (RecBole re-splits for each model from the seed)."""
    for a, b in zip(first, second, strict=True):
        (users_a, items_a), (users_b, items_b) = raw_pairs(a), raw_pairs(b)
        if not (np.array_equal(users_a, users_b) and np.array_equal(items_a, items_b)):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="MovieLens 100K u.data (required unless --split-in)")
    parser.add_argument("--protocol", choices=("general", "sequential"), default="general")
    parser.add_argument(
        "--models",
        help=f"comma-separated; general: a subset of {', '.join(MODELS)} (default all); "
        f"sequential: of {', '.join(SEQUENTIAL_MODELS)} (default both)",
    )
    parser.add_argument("--split-out", type=Path, help="write RecBole's split here (.npz, raw ids)")
    parser.add_argument(
        "--split-in", type=Path, help="general models: train and test on this split (.npz, ids as text)"
    )
    parser.add_argument("--bpr-epochs", type=int, help="cap BPR's epochs (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="training runs per closed-form model; fastest kept")
    parser.add_argument("--bpr-seeds", default=str(SEED), help="comma-separated seeds for BPR; results averaged")
    parser.add_argument(
        "--epochs",
        default=",".join(f"{model}={cap}" for model, cap in SEQUENTIAL_EPOCHS.items()),
        help="sequential: most epochs per model, as MODEL=N pairs",
    )
    parser.add_argument("--stopping-step", type=int, default=SEQUENTIAL_STOPPING_STEP, help="sequential: stopping_step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--split-only", action="store_true", help="sequential: only write --split-out (no model is trained)"
    )
    args = parser.parse_args()
    known = SEQUENTIAL_MODELS if args.protocol == "sequential" else MODELS
    args.models = args.models.split(",") if args.models else list(known)
    if unknown := set(args.models) - set(known):
        parser.error(f"not a {args.protocol} model: {', '.join(sorted(unknown))}")
    if (args.data is None) == (args.split_in is None):
        parser.error("give --data or --split-in")
    if args.split_in is not None and (args.protocol == "sequential" or args.split_out is not None):
        parser.error("--split-in is for the general models, without --split-out")
    if args.split_only and (args.protocol != "sequential" or args.split_out is None):
        parser.error("--split-only is for the sequential protocol, with --split-out")
    # RecBole's Config also parses sys.argv (any --key=value becomes a config entry): hide ours.
    sys.argv = sys.argv[:1]
    torch.set_num_threads(args.threads)
    data = args.data.resolve() if args.data else None
    split_in = args.split_in.resolve() if args.split_in else None
    split_out = args.split_out.resolve() if args.split_out else None

    started = time.perf_counter()
    results: dict = {
        "recbole_version": version("recbole"),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "threads": torch.get_num_threads(),
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="recbole-bench-") as scratch:
        root = Path(scratch)
        if split_in is not None:
            write_split_files(split_in, root / DATASET)
        else:
            write_atomic_file(data, root / DATASET)
        os.chdir(root)  # saved/, log/ and log_tensorboard/ land here
        reference = None
        if args.split_only:  # the split alone: the first model's data, nothing trained
            _, loaders = prepare_sequential(args.models[0], root, 1, args.stopping_step)
            reference = _record_split(results, tuple(loader._dataset for loader in loaders), split_out, args)
        for model in [] if args.split_only else args.models:
            figures, datasets = _run(model, root, args)
            if reference is None:
                reference = _record_split(results, datasets, split_out, args)
            figures["same_split_as_first_model"] = same_split(reference, datasets)
            results["models"][model] = figures
            print(
                f"RecBole {model}: {json.dumps(figures['test'])}, training {figures['train_seconds']:.2f}s, "
                f"{figures['epochs_run']:g} epoch(s)",
                file=sys.stderr,
                flush=True,
            )
    results["total_seconds"] = time.perf_counter() - started
    print(json.dumps(results))


def _record_split(results: dict, datasets: tuple, split_out: Path | None, args: argparse.Namespace) -> tuple:
    """Write the split of ``datasets`` to ``split_out`` (if given) and its sizes into ``results``; returns it."""
    if split_out:
        save_split(split_out, datasets, sequential=args.protocol == "sequential")
    results["split_sizes"] = {
        part: len(d.inter_feat) for part, d in zip(("train", "valid", "test"), datasets, strict=True)
    }
    results["n_users"], results["n_items"] = datasets[0].user_num - 1, datasets[0].item_num - 1
    return datasets


def _run(model: str, root: Path, args: argparse.Namespace) -> tuple[dict, tuple]:
    if args.protocol == "sequential":
        caps = {name: int(cap) for name, cap in (pair.split("=") for pair in args.epochs.split(","))}
        return run_sequential_model(
            model, root, epochs=caps.get(model, SEQUENTIAL_EPOCHS[model]), stopping_step=args.stopping_step
        )
    runs = [int(seed) for seed in args.bpr_seeds.split(",")] if model == "BPR" else [SEED] * args.repeats
    return run_model(model, root, bpr_epochs=args.bpr_epochs, runs=runs, presplit=args.split_in is not None)


if __name__ == "__main__":
    main()
