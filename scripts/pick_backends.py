"""Print shell exports choosing the database and broker: the configured ones when reachable, else embedded ones.

PostgreSQL and Redis are what production, CI and the tests use; the SQLite database and kombu's
filesystem transport exist so the demo runs on a machine that has neither.
"""

import os
import shlex
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def database_ready(url: str) -> bool:
    """Reachable, and the database exists (created here when the server allows it)."""
    if not reachable(url, 5432):
        return False
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        pass
    try:
        with psycopg.connect(url.replace(f"/{name}", "/postgres"), autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        print(f"created database {name}", file=sys.stderr)
        return True
    except psycopg.Error as error:
        print(f"cannot use {url}: {error}", file=sys.stderr)
        return False


def main() -> None:
    database_url = os.environ["DATABASE_URL"]
    broker_url = os.environ["CELERY_BROKER_URL"]
    exports = {}
    if database_url.startswith("postgres") and not database_ready(database_url):
        exports["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'demo.sqlite3'}"
        print(f"==> PostgreSQL not reachable at {database_url}: using SQLite at var/demo.sqlite3", file=sys.stderr)
    else:
        print(f"==> database: {database_url}", file=sys.stderr)
    if broker_url.startswith("redis") and not reachable(broker_url, 6379):
        exports["CELERY_BROKER_URL"] = "filesystem://"
        (ROOT / "var" / "broker" / "processed").mkdir(parents=True, exist_ok=True)
        print(f"==> Redis not reachable at {broker_url}: using the filesystem broker in var/broker", file=sys.stderr)
    else:
        print(f"==> broker: {broker_url}", file=sys.stderr)
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
