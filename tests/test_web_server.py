"""The web tier as gunicorn runs it from the repository's gunicorn.conf.py."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT, free_port, listening, wait_until


def test_a_client_connected_but_silent_does_not_hold_up_another_clients_request():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "recsys_site.wsgi", "-w", "1", "--timeout", "60", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: listening(port), timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=60):  # the application is loaded
            pass
        with socket.create_connection(("127.0.0.1", port)):  # connected, never writes
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=50) as response:
                assert response.status == 200
            assert time.monotonic() - started < 30  # a synchronous worker would wait out the 60 s timeout first
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
