"""Fit Surprise 1.1.5's ``SVD`` with its defaults on one MovieLens 100K fold and print one JSON document.

Runs inside benchmarks/peers/.venv-surprise (see setup_surprise.sh), never in the project's venv:

    .venv-surprise/bin/python run_surprise.py --base u1.base --test u1.test [--repeats 3] [--seed 0]

``--base`` and ``--test`` are tab-separated ``user item rating timestamp`` files (the layout of MovieLens' u.data
and of its u1..u5 folds). ``SVD()`` keeps every default (100 factors, 20 epochs of SGD, learning rate 0.005,
regularisation 0.02, biases on); only its random state is fixed, for a reproducible draw. The fit is timed
``--repeats`` times (the fastest kept: the machine is shared) and the last fit is tested. Reported: ``rmse`` and
``mae`` on the test ratings (Surprise's own ``accuracy`` functions; Surprise clips predictions to the rating scale)
and ``fit_seconds``.
"""

import argparse
import json
import time
from importlib.metadata import version

from surprise import SVD, Dataset, Reader, accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))
    trainset = Dataset.load_from_file(args.base, reader=reader).build_full_trainset()
    testset = [tuple(line.split("\t")[:3]) for line in open(args.test).read().splitlines() if line]
    testset = [(user, item, float(rating)) for user, item, rating in testset]
    times = []
    for _ in range(args.repeats):
        algorithm = SVD(random_state=args.seed)
        started = time.perf_counter()
        algorithm.fit(trainset)
        times.append(time.perf_counter() - started)
    predictions = algorithm.test(testset)
    print(
        json.dumps(
            {
                "surprise": version("scikit-surprise"),
                "rmse": accuracy.rmse(predictions, verbose=False),
                "mae": accuracy.mae(predictions, verbose=False),
                "fit_seconds": min(times),
            }
        )
    )


if __name__ == "__main__":
    main()
