"""Celery tasks are sent from the apps' ``dispatch`` modules only, by names the worker knows."""

import ast

import pytest

from recsys_site.celery import app
from scenarios import dispatch as scenarios_dispatch
from tests.test_import_graph import ROOT, project_modules
from training import dispatch as training_dispatch

SENDING_CALLS = {"delay", "apply_async", "send_task", "delay_on_commit", "apply_async_on_commit"}


def _sending_calls(source: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SENDING_CALLS
    ]


def test_only_the_dispatch_modules_send_tasks():
    senders = {
        name: lines
        for name, path in project_modules(ROOT).items()
        if not name.endswith(".dispatch") and (lines := _sending_calls(path.read_text()))
    }

    assert senders == {}, f"send tasks through <app>/dispatch.py, not from {senders}"


def test_the_check_sees_a_task_sent_from_a_view():
    assert _sending_calls("def view(request):\n    group_matrix_task.delay(1)\n") == [2]


@pytest.mark.parametrize("name", [*training_dispatch.TASK_NAMES, *scenarios_dispatch.TASK_NAMES])
def test_every_dispatched_name_is_a_task_the_worker_registers(name):
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery of <app>.tasks

    assert name in app.tasks


def test_every_task_has_a_hard_time_limit_below_the_brokers_visibility_timeout():
    app.loader.import_default_modules()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    limits = {name: task.time_limit for name, task in app.tasks.items() if not name.startswith("celery.")}

    assert limits and {name: limit for name, limit in limits.items() if not limit or limit >= visibility} == {}
