"""Timing the training pass of each epoch alone, on either side of a comparison: RecBole's trainer (run_recbole.py,
in RecBole's virtualenv) and our models (benchmarks.recbole_sequential), both of which train an epoch in
``_train_epoch``."""

import time


def training_pass_seconds(owner) -> list[float]:
    """Wraps ``owner._train_epoch``; the list returned gets the seconds of each call, appended as it ends."""
    seconds: list[float] = []
    train_epoch = owner._train_epoch

    def timed_train_epoch(*args, **kwargs):
        begun = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        seconds.append(time.perf_counter() - begun)
        return loss

    owner._train_epoch = timed_train_epoch
    return seconds
