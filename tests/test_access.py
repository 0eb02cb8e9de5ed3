"""API tokens (hashed, scoped, expiring, revocable), rate limits, the login lockout and the admin role's limits."""

import importlib
import io
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, RequestFactory, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create
from dashboards.services import account_create
from recsys_site import serving_version
from recsys_site import settings as project_settings
from recsys_site.throttles import AddressRateThrottle
from tests.conftest import free_port, token_client

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/interactions/"
TOKENS = "/api/v1/tokens/"


def _event(n: int = 0) -> dict:
    return {"events": [{"user": f"u{n}", "item": f"i{n}", "occurred_at": 1_700_000_000 + n}]}


def _with_secret(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def _create_token(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_create_token_prints_a_secret_that_is_stored_only_as_a_digest():
    account_create(username="feed", password="feed-pass-123", role="integration")

    secret = _create_token("feed", "--scope", "ingest", "--expires-days", "30", "--name", "shop events")

    token = ApiToken.objects.get()
    assert secret not in (token.digest, token.token_key) and secret.startswith(token.token_key)
    assert token.scope == "ingest" and token.name == "shop events"
    assert timedelta(days=29) < token.expiry - timezone.now() <= timedelta(days=30)
    assert _with_secret(secret).post(EVENTS, _event(), format="json").status_code == 201


def test_create_token_refuses_a_scope_the_role_cannot_use_and_an_unknown_account():
    account_create(username="vera", password="viewer-pass-123", role="viewer")
    with pytest.raises(CommandError, match=r"lacks catalog\.add_interaction"):
        _create_token("vera", "--scope", "ingest")
    with pytest.raises(CommandError, match="no account"):
        _create_token("nobody", "--scope", "full")
    with pytest.raises(CommandError, match="expires_days"):
        _create_token("vera", "--scope", "recommend", "--expires-days", "0")
    assert not ApiToken.objects.exists()


def test_an_analyst_and_an_ingest_token_can_ingest_without_the_admin_role():
    analyst = account_create(username="anna", password="analyst-pass-123", role="analyst")
    feed = account_create(username="feed", password="feed-pass-123", role="integration")

    assert token_client(analyst).post(EVENTS, _event(1), format="json").status_code == 201
    ingest = token_client(feed, "ingest")
    assert ingest.post(EVENTS, _event(2), format="json").status_code == 201
    # The scope allows nothing but ingesting, whatever the role.
    assert ingest.get("/api/v1/items/").status_code == 403
    assert ingest.get(TOKENS).status_code == 403


def test_tokens_are_listed_without_secrets_and_revoked_by_their_owner():
    owner = account_create(username="anna", password="analyst-pass-123", role="analyst")
    other = account_create(username="otto", password="analyst-pass-123", role="analyst")
    client = token_client(owner)
    spare, spare_secret = api_token_create(user=owner, scope="recommend")
    others = token_client(other)

    listed = client.get(TOKENS).json()["results"]

    assert {row["token_key"] for row in listed} == set(
        ApiToken.objects.filter(user=owner).values_list("token_key", flat=True)
    )
    assert all(set(row) == {"token_key", "name", "scope", "created", "expiry"} for row in listed)
    assert others.delete(f"{TOKENS}{spare.token_key}/").status_code == 404  # not someone else's
    assert _with_secret(spare_secret).get(TOKENS).status_code == 403  # known, but its scope stops it here
    with TestCase.captureOnCommitCallbacks(execute=True):  # as committed: the access version changes
        assert client.delete(f"{TOKENS}{spare.token_key}/").status_code == 204
    assert not ApiToken.objects.filter(token_key=spare.token_key).exists()
    assert _with_secret(spare_secret).get(TOKENS).status_code == 401


def test_expired_tokens_and_tokens_older_than_a_password_change_are_refused():
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    expiring = token_client(user)
    kept = token_client(user)
    ApiToken.objects.filter(pk=ApiToken.objects.order_by("created").first().pk).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    assert expiring.get(TOKENS).status_code == 401
    assert kept.get(TOKENS).status_code == 200

    with TestCase.captureOnCommitCallbacks(execute=True):
        user.set_password("a-new-password-456")
        user.save()

    response = kept.get(TOKENS)
    assert response.status_code == 401 and "password" in response.json()["detail"]


def test_a_request_reads_only_its_own_token_and_a_new_token_deletes_the_expired_ones():
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    client = token_client(user)
    expired, _ = api_token_create(user=user, scope="full")
    ApiToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/items/").status_code == 200
    assert sum('FROM "accounts_apitoken"' in query["sql"] for query in queries) == 1
    assert ApiToken.objects.filter(pk=expired.pk).exists()

    api_token_create(user=user, scope="full")
    assert not ApiToken.objects.filter(pk=expired.pk).exists() and ApiToken.objects.filter(user=user).count() == 2


def test_a_role_is_read_in_one_query_and_a_changed_role_applies_at_the_next_request():
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    client = token_client(user)

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/items/").status_code == 200
    assert sum('FROM "auth_permission"' in query["sql"] for query in queries) == 1

    with TestCase.captureOnCommitCallbacks(execute=True):
        user.groups.clear()
    assert client.get("/api/v1/items/").status_code == 403


def _token_reads(client, path: str = "/api/v1/items/") -> tuple[int, int]:
    """The answer's status and how many times the request read the token table."""
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, sum('FROM "accounts_apitoken"' in query["sql"] for query in queries)


@pytest.fixture
def access_version_known():
    """The access version set, as it is once any token or account has changed: processes keep the tokens they read.
    (The tests' own changes bump it only where a test runs the commit's callbacks.)"""
    serving_version._bump(serving_version.ACCESS_KEY)
    yield
    serving_version._forget()


def test_a_client_s_token_is_read_once_while_the_access_version_holds(access_version_known):
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    _, secret = api_token_create(user=user, scope="full")
    client, wrong = APIClient(), APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    wrong.credentials(HTTP_AUTHORIZATION=f"Token {secret[:-1]}{'a' if secret[-1] != 'a' else 'b'}")  # its key, not it

    assert _token_reads(client) == (200, 1)
    assert _token_reads(client) == (200, 0)
    assert _token_reads(token_client(user)) == (200, 1)  # another token: its own read
    assert _token_reads(wrong)[0] == 401  # a kept token still checks the secret


def test_while_redis_cannot_be_reached_every_request_reads_its_token(settings):
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    client = token_client(user)
    settings.RECSYS_THROTTLE_RATES = {"token": None, "address": None}
    settings.CACHES = {
        "default": {"BACKEND": "recsys_site.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }  # nothing listens there: the access version is unknown
    serving_version._forget()
    try:
        assert [_token_reads(client) for _ in range(2)] == [(200, 1), (200, 1)]
    finally:
        serving_version._forget()


def _revoke(user, client) -> None:
    assert client.delete(f"{TOKENS}{ApiToken.objects.get(user=user).token_key}/").status_code == 204


def _deactivate(user, client) -> None:
    user.is_active = False
    user.save()


def _change_password(user, client) -> None:
    user.set_password("a-new-password-456")
    user.save()


def _drop_role(user, client) -> None:
    user.groups.clear()


def _drop_permission(user, client) -> None:
    user.groups.get().permissions.remove(Permission.objects.get(codename="view_item"))


@pytest.mark.parametrize("change", [_revoke, _deactivate, _change_password, _drop_role, _drop_permission])
def test_a_change_to_a_kept_token_or_its_account_applies_at_the_next_request(
    access_version_known, django_capture_on_commit_callbacks, change
):
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    client = token_client(user)
    assert _token_reads(client) == (200, 1) and _token_reads(client) == (200, 0)  # kept

    with django_capture_on_commit_callbacks(execute=True):
        change(user, client)

    assert _token_reads(client)[0] in {401, 403}


def test_tokens_are_throttled_one_by_one(settings):
    settings.RECSYS_THROTTLE_RATES = {"token": "2/min", "address": None}
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    first, second = token_client(user), token_client(user)

    codes = [first.get(TOKENS).status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    refused = first.get(TOKENS)
    assert refused.status_code == 429 and "throttled" in refused.json()["detail"] and refused["Retry-After"]
    assert second.get(TOKENS).status_code == 200  # its own budget


def test_addresses_are_throttled_whoever_asks(settings):
    settings.RECSYS_THROTTLE_RATES = {"token": None, "address": "2/min"}
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")

    codes = [token_client(user).get(TOKENS).status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    assert token_client(user).get(TOKENS, REMOTE_ADDR="10.0.0.9").status_code == 200
    # A client cannot pick its own address with a header when no proxy is configured.
    assert token_client(user).get(TOKENS, HTTP_X_FORWARDED_FOR="10.0.0.10").status_code == 429


def test_requests_checked_at_the_same_moment_are_each_counted(settings):
    # Sixteen threads, as many processes would, each with its own check: exactly the limit is let through.
    settings.RECSYS_THROTTLE_RATES = {"token": None, "address": "40/min"}
    request = RequestFactory().get("/api/v1/scenarios/", REMOTE_ADDR="10.0.0.7")
    start, allowed = threading.Barrier(16), []

    def ask() -> None:
        start.wait()
        allowed.extend(AddressRateThrottle().allow_request(request, None) for _ in range(5))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 40


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _check(request, clock: _Clock) -> tuple[bool, float | None]:
    throttle = AddressRateThrottle()
    throttle.timer = clock
    allowed = throttle.allow_request(request, None)
    return allowed, None if allowed else throttle.wait()


def test_the_limit_slides_over_the_last_window_by_the_share_still_within_the_duration(settings):
    settings.RECSYS_THROTTLE_RATES = {"token": None, "address": "4/min"}
    request = RequestFactory().get("/api/v1/scenarios/", REMOTE_ADDR="10.0.0.8")
    clock = _Clock(60 * 1_000_000 + 30.0)  # half way through a minute

    assert [_check(request, clock)[0] for _ in range(4)] == [True] * 4
    allowed, wait = _check(request, clock)
    assert not allowed and wait == pytest.approx(30.0 + 15.0)  # the next minute, until 4 × (1 - t/60) ≤ 3
    clock.now += 30.0 + 14.0
    assert not _check(request, clock)[0]
    clock.now += 2.0
    assert _check(request, clock)[0]  # 4 × 0.73 + 0 + 1 ≤ 4
    assert not _check(request, clock)[0]  # 4 × 0.73 + 1 + 1 > 4
    clock.now += 60.0
    assert [_check(request, clock)[0] for _ in range(3)] == [True, True, True]  # 1 × 0.27 + 2 + 1 ≤ 4


def test_repeated_failed_logins_lock_the_login_for_that_user_and_address(settings):
    settings.AXES_FAILURE_LIMIT = 3
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    account_create(username="otto", password="analyst-pass-123", role="analyst")
    browser = Client()
    codes = [browser.post("/accounts/login/", {"username": "anna", "password": "wrong"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the third failure locks

    locked = browser.post("/accounts/login/", {"username": "anna", "password": "analyst-pass-123"})

    assert locked.status_code == 429 and "_auth_user_id" not in browser.session
    assert Client().post("/accounts/login/", {"username": "otto", "password": "analyst-pass-123"}).status_code == 302


def test_the_admin_role_cannot_make_itself_superuser_nor_touch_superusers():
    admin = account_create(username="ada", password="admin-pass-123", role="admin")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    browser = Client()
    browser.force_login(admin)
    page = f"/admin/auth/user/{admin.pk}/change/"
    assert 'name="is_superuser"' not in browser.get(page).text
    assert 'name="user_permissions"' not in browser.get(page).text

    saved = browser.post(
        page,
        {
            "username": "ada",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": list(admin.groups.values_list("pk", flat=True)),
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert saved.status_code == 302  # the form was accepted ...
    admin.refresh_from_db()
    assert not admin.is_superuser and not admin.user_permissions.exists()  # ... without those fields
    assert browser.get(f"/admin/auth/user/{root.pk}/change/").status_code == 302  # "does not exist"
    assert "root" not in browser.get("/admin/auth/user/").text


def test_the_admin_role_cannot_reach_a_superuser_by_password_deletion_or_its_own_group():
    admin = account_create(username="ada", password="admin-pass-123", role="admin")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    browser = Client()
    browser.force_login(admin)
    role_group = admin.groups.get()

    browser.post(
        f"/admin/auth/user/{root.pk}/password/", {"password1": "taken-over-123", "password2": "taken-over-123"}
    )
    browser.post("/admin/auth/user/", {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"})
    browser.post(f"/admin/auth/group/{role_group.pk}/change/", {"name": "admin", "permissions": []})

    root.refresh_from_db()
    assert root.check_password("root-pass-123") and root.is_superuser
    assert role_group.permissions.exists()  # the role's group is not the admin role's to edit
    assert browser.get(f"/admin/auth/group/{role_group.pk}/change/").status_code in (200, 403)
    assert 'name="permissions"' not in browser.get(f"/admin/auth/group/{role_group.pk}/change/").text


def test_the_schema_needs_a_login_unless_a_setting_opens_it(settings):
    assert APIClient().get("/api/v1/schema/").status_code == 401
    assert APIClient().get("/api/v1/docs/").status_code == 401
    settings.RECSYS_API_DOCS_PUBLIC = True
    assert APIClient().get("/api/v1/schema/").status_code == 200


def test_pages_carry_a_content_security_policy_whose_nonce_their_scripts_use():
    from tests.factories import scenario

    scenario()
    browser = Client()
    browser.force_login(account_create(username="anna", password="analyst-pass-123", role="analyst"))

    page = browser.get("/scenarios/movies/")

    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
    assert "'unsafe-inline'" not in policy["script-src"] and "'self'" in policy["script-src"]
    nonce = policy["script-src"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text
    assert "onchange=" not in page.text and "<script>" not in page.text


def test_passwords_are_hashed_with_argon2(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS

    user = account_create(username="anna", password="analyst-pass-123", role="analyst")

    assert user.password.startswith("argon2")


def test_plain_text_authtoken_keys_are_carried_over_hashed_and_their_table_dropped():
    user = account_create(username="anna", password="analyst-pass-123", role="analyst")
    legacy_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz, user_id int)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [legacy_key, user.pk])
    migration = importlib.import_module("accounts.migrations.0002_tokens_from_authtoken")
    from django.apps import apps

    with connection.schema_editor() as editor:
        migration.forwards(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get()
    assert token.scope == "full" and legacy_key not in (token.digest, token.token_key)
    assert _with_secret(legacy_key).get(TOKENS).status_code == 200
