"""One experiment from its config: each dataset's parts, in order, and one results file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.multi_scenario.adaptation import adaptation, student_seeds
from benchmarks.multi_scenario.cold import cold_items
from benchmarks.multi_scenario.config import Config
from benchmarks.multi_scenario.data import dataset_load
from benchmarks.multi_scenario.figures import (
    adaptation_figures,
    cold_figures,
    per_scenario_figures,
    target_figures,
)
from benchmarks.multi_scenario.fitting import say
from benchmarks.results_io import write_results


def experiment_run(*, config: Config, data_root: Path, cache: Path | None, features: Path | None) -> Path:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    figures: dict[str, float | int | str] = {
        "command": f"python -m benchmarks.multi_scenario {config.source}",
        "device": config.device,
        "epochs_cap": config.epochs,
        "torch_threads": torch.get_num_threads(),  # float sums, and so the seeded figures, depend on it
    }
    for name in config.datasets:
        say(f"==> {name}: {', '.join(config.parts)}")
        dataset = dataset_load(name=name, folder=data_root / name)
        if features is not None:
            dataset.features = np.load(features / f"{name}.npy")
        figures.update(_dataset_figures(config, dataset, cache))
    figures.update(target_figures())
    return write_results(config.out, figures)


def _dataset_figures(config: Config, dataset, cache: Path | None) -> dict[str, float]:
    device, epochs, figures = config.device, config.epochs, {}
    if "adaptation" in config.parts:
        figures.update(adaptation_figures(dataset.name, adaptation(dataset, device, epochs)))
    if "cold" in config.parts:
        settings = config.cold
        draws = [
            cold_items(dataset, device, epochs, settings.content_rank, draw, settings.hybrids, settings.prior_params)
            for draw in range(settings.draws)
        ]
        figures.update(cold_figures(dataset.name, draws))
    if "students" in config.parts:
        figures.update(
            per_scenario_figures(dataset.name, student_seeds(dataset, device, epochs, config.students, cache))
        )
    return figures
