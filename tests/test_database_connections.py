"""Kept database connections: checked without a query before a request reuses them, replaced once the server
dropped them (recsys_site/postgresql)."""

import http.client
import json

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from accounts.services import api_token_create
from tests.faults import WebServer, terminate_other_backends, terminate_own_backend

pytestmark = pytest.mark.django_db(transaction=True)


def _last_query_of(pid: int) -> str:
    """The latest statement of session ``pid``, as the server saw it (read from a connection of its own)."""
    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"] or "localhost", port=database["PORT"] or 5432, user=database["USER"] or "postgres",
        dbname=database["NAME"], autocommit=True,
    ) as admin:  # fmt: skip
        return admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


def test_an_idle_kept_connection_is_checked_without_a_query_and_a_dropped_one_is_not_usable():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")
    pid = connection.connection.info.backend_pid

    assert connection.is_usable()
    assert _last_query_of(pid) == "SELECT 'the last statement'"  # the check sent nothing

    terminate_own_backend()
    try:
        assert not connection.is_usable()
        connection.health_check_done = False  # a new request: its first query checks the kept connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # on a new connection
        assert connection.connection.info.backend_pid != pid
    finally:
        if connection.connection is not None and connection.connection.info.backend_pid == pid:
            connection.close()  # a failure here must not leave the next tests a dead connection


def test_a_request_on_a_kept_connection_the_server_dropped_is_served(admin_user):
    _, token = api_token_create(user=admin_user, scope="full")
    web = WebServer(broker_url=settings.CELERY_BROKER_URL).start()

    def status() -> int:
        client = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
        try:
            client.request("GET", "/api/v1/items/", headers={"Authorization": f"Token {token}"})
            response = client.getresponse()
            json.loads(response.read())
            return response.status
        finally:
            client.close()

    try:
        assert [status() for _ in range(6)] == [200] * 6  # the workers keep their connections
        assert terminate_other_backends() >= 1
        assert [status() for _ in range(6)] == [200] * 6  # no 503: each worker replaced its dropped connection
    finally:
        web.stop()
