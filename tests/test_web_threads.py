"""Web processes set torch's thread count from RECSYS_WEB_TORCH_THREADS."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_wsgi_application_sets_torch_threads(threads):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "RECSYS_WEB_TORCH_THREADS": threads}
    done = subprocess.run(
        [sys.executable, "-c", "import recsys_site.wsgi, torch; print(torch.get_num_threads())"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == threads


def test_a_bad_thread_count_stops_start_up():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "RECSYS_WEB_TORCH_THREADS": "0"}
    done = subprocess.run(
        [sys.executable, "-c", "import recsys_site.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "RECSYS_WEB_TORCH_THREADS" in done.stderr
