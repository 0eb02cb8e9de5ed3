"""A fresh PostgreSQL database for one benchmark, with this process's Django pointed at it, dropped afterwards.

Settings are production's (DEBUG off, no TLS redirect) with a fixed benchmark-only secret key and the benchmark's
own artifact folder under ``var/``; ``BENCH_DATABASE_ADMIN_URL`` names the server's maintenance database.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import psycopg

from benchmarks.results_io import ROOT


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgres://postgres@localhost:5432/postgres")


def database_recreate(name: str, *, create: bool = True) -> None:
    """Drop ``name`` (closing its sessions) and, with ``create``, create it empty."""
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def benchmark_environment(name: str, *, artifacts: str, **overrides: str) -> dict[str, str]:
    """The environment variables that point Django at the database ``name`` (``overrides`` win)."""
    return {
        "DATABASE_URL": admin_url().rsplit("/", 1)[0] + f"/{name}",
        "DJANGO_SETTINGS_MODULE": "recsys_site.settings",
        "DJANGO_SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "RECSYS_ARTIFACT_ROOT": str(ROOT / "var" / artifacts),
        **overrides,
    }


@contextlib.contextmanager
def benchmark_database(name: str, *, artifacts: str, **overrides: str) -> Iterator[None]:
    """The database ``name`` created afresh and this process's environment pointed at it (call
    ``django.setup()`` inside); on the way out Django's connections close and the database is dropped."""
    database_recreate(name)
    os.environ.update(benchmark_environment(name, artifacts=artifacts, **overrides))
    try:
        yield
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        database_recreate(name, create=False)
