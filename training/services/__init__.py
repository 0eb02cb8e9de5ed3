"""Training runs: create and dispatch, execute on a worker, cancel, reap, promote and roll back.

Every status change is one conditional UPDATE (``filter(status=…).update(…)``) whose row count
says whether this caller won; nothing reads a status and then acts on it.
"""

from training.services.cancellation import training_run_cancel, training_runs_reap
from training.services.creation import training_run_create
from training.services.execution import training_run_claim, training_run_execute
from training.services.promotion import scenario_rollback, training_run_promote
from training.services.serving_cost import serving_profile

__all__ = [
    "scenario_rollback",
    "serving_profile",
    "training_run_cancel",
    "training_run_claim",
    "training_run_create",
    "training_run_execute",
    "training_run_promote",
    "training_runs_reap",
]
