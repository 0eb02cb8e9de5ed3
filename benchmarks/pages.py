"""Server time of each dashboard page with 200 runs and 100,000 events.

    .venv/bin/python -m benchmarks.pages [--data ../shared/data/ml-100k] [--runs 200] [--repeats 7]

Builds the database ``recsys_bench_pages`` (dropped afterwards): imports MovieLens 100K, trains two
real runs in-process (item-kNN and EASE), and adds copies of them up to ``--runs`` runs. Each page is
requested through Django's test client (the full middleware, view and template stack, no network);
the figure is the median of ``--repeats`` requests after one warm-up.
"""

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.bench_database import benchmark_database
from benchmarks.results_io import ROOT, machine, write_results

DB_NAME = "recsys_bench_pages"
TARGET_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with benchmark_database(DB_NAME, artifacts="bench-artifacts", DJANGO_STATIC_MANIFEST="0"):
        timings = _measure(args.data, args.runs, args.repeats)
    _report(timings, args.runs)


def _measure(data: Path, n_runs: int, repeats: int) -> dict[str, float]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client needs it; it does not touch the database
    call_command("migrate", verbosity=0)
    call_command("import_movielens", str(data), no_progress=True, verbosity=0)
    pages = _fixtures(n_runs)
    client = Client()
    client.login(username="bench", password="bench-password-1234")
    timings = {}
    for name, url in pages.items():
        client.get(url)  # warm-up: model cache, template loading
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings[name] = statistics.median(samples)
    return timings


def _fixtures(n_runs: int) -> dict[str, str]:
    from catalog.models import Interaction
    from dashboards.services import account_create
    from scenarios.services import scenario_create, scenario_slice_refresh
    from training.models import RunEvaluation, TrainingRun
    from training.services import training_run_create, training_run_execute, training_run_promote

    account_create(username="bench", password="bench-password-1234", role="analyst")
    scenario = scenario_create(
        data={"slug": "movies", "name": "Movies", "algorithm": "ease", "event_weights": {"rating": 1.0}, "min_value": 3}
    )
    scenario_slice_refresh(scenario=scenario)
    trained = []
    for algorithm in ("item_knn", "ease"):
        run = training_run_create(scenario=scenario, algorithm=algorithm, params={})
        training_run_execute(run_id=run.pk, device="cpu")
        trained.append(TrainingRun.objects.get(pk=run.pk))
    training_run_promote(run=trained[1])
    template = trained[0]
    copies = [
        TrainingRun(
            scenario=scenario,
            algorithm=template.algorithm,
            params=template.params,
            protocol=template.protocol,
            status=template.status,
            metrics=template.metrics,
            history=template.history,
            data_snapshot=template.data_snapshot,
            finished_at=template.finished_at,
            progress=1.0,
            artifact_path=template.artifact_path,
            artifact_sha256=template.artifact_sha256,
        )
        for _ in range(n_runs - len(trained))
    ]
    TrainingRun.objects.bulk_create(copies)
    evaluation = template.evaluation
    RunEvaluation.objects.bulk_create(
        [RunEvaluation(run=run, user_ids=evaluation.user_ids, vectors=evaluation.vectors) for run in copies]
    )
    assert Interaction.objects.count() >= 100_000 and TrainingRun.objects.count() == n_runs
    user = Interaction.objects.values_list("user__external_id", flat=True).first()
    first, second = trained
    return {
        "scenario list": "/scenarios/",
        "scenario (runs, timeline)": "/scenarios/movies/",
        "scenario form": "/scenarios/movies/edit/",
        "run": f"/runs/{second.pk}/",
        "compare (2 runs)": f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}",
        "sample recommendations": f"/scenarios/movies/samples/?user={user}&run={first.pk}",
        "data overview": "/data/",
    }


def _report(timings: dict[str, float], n_runs: int) -> None:
    figures = {f"{_key(name)}_ms": round(ms, 1) for name, ms in timings.items()}
    figures.update(runs=n_runs, events=100_000, target_ms=TARGET_MS, slowest_ms=round(max(timings.values()), 1))
    write_results("pages", {**figures, "machine": machine()})
    for name, ms in timings.items():
        print(f"{name:<28} {ms:8.1f} ms")


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_").replace("__", "_")


if __name__ == "__main__":
    main()
