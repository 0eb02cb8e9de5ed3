"""Hyperparameter studies: search spaces from the algorithms' declarations, Optuna's sampler and pruner over
the project's own runs, and the services that start, advance, cancel and promote a study."""
