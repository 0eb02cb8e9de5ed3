"""``python -m benchmarks.multi_scenario CONFIG.toml [--cache DIR] [--features DIR]``: run one experiment and write
``benchmarks/results/OUT.json``; ``python -m benchmarks.report`` then refreshes docs/benchmarks.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.multi_scenario.config import ConfigError, config_load
from benchmarks.multi_scenario.run import experiment_run
from benchmarks.results_io import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multi_scenario", description=__doc__)
    parser.add_argument("config", type=Path, help="benchmarks/multi_scenario/configs/NAME.toml")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--cache",
        type=Path,
        help="students: keep the pretrained group model and the fine-tuned (b) models here, and reuse "
        "those an earlier run saved with the same dataset, seed, epoch cap, device and thread count.",
    )
    parser.add_argument(
        "--features", type=Path, help="Folder of precomputed item embeddings (NAME.npy), for a machine without the "
        "encoder package; --save-features writes them."
    )  # fmt: skip
    parser.add_argument("--save-features", type=Path, help="Encode each dataset's films into this folder and stop.")
    args = parser.parse_args()
    try:
        config = config_load(path=args.config)
    except ConfigError as error:
        parser.error(str(error))
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"{args.config} asks for {config.device}, and this machine has no CUDA device")
    if args.save_features:
        from benchmarks.multi_scenario.cold import encode
        from benchmarks.multi_scenario.data import dataset_load

        args.save_features.mkdir(parents=True, exist_ok=True)
        for name in config.datasets:
            np.save(
                args.save_features / f"{name}.npy", encode(dataset_load(name=name, folder=args.data_root / name), "cpu")
            )
        return 0
    path = experiment_run(config=config, data_root=args.data_root, cache=args.cache, features=args.features)
    print(
        f"wrote {path.relative_to(ROOT)}; `python -m benchmarks.report` refreshes docs/benchmarks.md", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
