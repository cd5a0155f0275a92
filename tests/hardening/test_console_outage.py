"""The console during a Redis outage, with the default SESSION_STORAGE=redis.

Staff sessions are kept in the database, so a signed-in admin keeps the ops pages and
an admin can sign in while Redis is killed (SIGKILL), hung (SIGSTOP) or full
(maxmemory + noeviction). Tenant owners' sessions are in Redis: they get the clear
503 page, never a 500. Nothing an outage refuses is half done, and nothing revoked
during it comes back when Redis returns.
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from resilience.breakers.process import redis_breaker
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.sessions import selectors
from resilience.sessions.services import session_revoke, sessions_revoke_all

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

HYBRID = "resilience.sessions.backend"
REDIS_PAGE = "/admin/ops/redis/"
OPS_PAGES = [REDIS_PAGE, "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


@pytest.fixture(autouse=True)
def _default_engine(settings):
    assert settings.SESSION_ENGINE == HYBRID  # the default SESSION_STORAGE=redis, not a test override
    redis_breaker.configure(fail_max=2, reset_timeout=0.3, success_threshold=1)


@pytest.fixture
def staff(fast_hasher):
    return get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)


@pytest.fixture
def redis_full(redis_server):
    """Fill the test redis-server to maxmemory with noeviction; restore it afterwards."""
    client = redis.Redis(port=redis_server.port)
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", used + 2 * 1024 * 1024)
    blob = b"x" * 64 * 1024
    try:
        for n in range(10_000):
            client.set(f"filler:{n}", blob)
    except redis.exceptions.OutOfMemoryError:
        pass
    else:
        pytest.fail("redis-server never reached maxmemory")
    # Freeing the refused command's buffer drops below the limit again; stay over it.
    client.config_set("maxmemory", client.info("memory")["used_memory"] - 512 * 1024)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("probe", "x")
    yield client
    client.config_set("maxmemory", 0)
    client.flushall()
    client.close()


@contextmanager
def outage(redis_server, how: str, request):
    """Make Redis unusable the way `how` says (kill, pause, full), and bring it back afterwards."""
    if how == "kill":
        redis_server.kill()
    elif how == "pause":
        redis_server.process.send_signal(signal.SIGSTOP)
    else:
        request.getfixturevalue("redis_full")
    try:
        yield
    finally:
        if how == "kill":
            redis_server.start()
        elif how == "pause":
            redis_server.process.send_signal(signal.SIGCONT)
        else:
            with redis.Redis(port=redis_server.port) as client:
                client.config_set("maxmemory", 0)
                client.delete(*client.keys("filler:*"))
    time.sleep(0.35)  # the breaker's reset timeout: the next command is a trial


def sign_in(client: Client, path: str, username: str):
    return client.post(path, {"username": username, "password": PASSWORD})


def signed_in_staff(username="root") -> Client:
    client = Client()
    response = sign_in(client, "/admin/login/?next=/admin/", username)
    assert response.status_code == 302, response.content[:300]
    return client


def assert_no_500(response):
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.content[:300])


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_staff_signed_in_before_the_outage_keep_the_ops_pages(how, staff, redis_server, request):
    client = signed_in_staff()
    with outage(redis_server, how, request):
        redis_page = client.get(REDIS_PAGE)
        assert redis_page.status_code in (200, 503), redis_page.status_code
        assert b"id_username" not in redis_page.content  # the page itself, not the sign-in form
        for path in ["/admin/", *OPS_PAGES]:
            response = client.get(path)
            assert response.status_code != 302, path  # not sent to the sign-in page
            assert_no_500(response)
        assert client.get(f"{REDIS_PAGE}?format=json").json()["ok"] is False
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("how", ["kill", "pause", "full"])
def test_staff_can_sign_in_during_the_outage_and_are_revocable_after(how, staff, redis_server, request):
    with outage(redis_server, how, request):
        client = Client()
        response = sign_in(client, "/admin/login/?next=/admin/", "root")
        assert response.status_code == 302, response.content[:300]
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert client.get(REDIS_PAGE).status_code in (200, 503)
        assert b"id_username" not in client.get(REDIS_PAGE).content
        assert AuditEvent.objects.filter(action="auth.login").count() == 1
    # After Redis returns the session is listed and "log out everywhere" ends it.
    assert client.get("/admin/").status_code == 200
    assert [info.session_key for info in selectors.sessions_for_user(staff)] == [key]
    assert sessions_revoke_all(user=staff, actor=staff) == 1
    assert client.get("/admin/").status_code == 302


def test_sign_in_rotates_the_session_key_during_an_outage(staff, redis_server, request):
    client = Client()
    client.get("/admin/login/")
    session = client.session
    session["pre_login"] = True
    session.save()
    before = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = before
    with outage(redis_server, "kill", request):
        assert sign_in(client, "/admin/login/?next=/admin/", "root").status_code == 302
        assert client.cookies[settings.SESSION_COOKIE_NAME].value != before
    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = before
    assert stale.get("/admin/").status_code == 302  # the pre-login key never became a signed-in session


@pytest.mark.parametrize("how", ["kill", "full"])
def test_owner_sign_in_during_the_outage_is_the_clear_503_never_a_500(how, world, redis_server, request):
    with outage(redis_server, how, request):
        response = sign_in(Client(), "/portal/login/", world.a_owner.username)
        assert response.status_code == 503, response.content[:300]
        assert b"session store (Redis) is unavailable" in response.content
        assert response["Retry-After"]
    assert sign_in(Client(), "/portal/login/", world.a_owner.username).status_code == 302


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_a_session_revoked_during_the_outage_stays_revoked(how, staff, redis_server, request, django_user_model):
    victim = django_user_model.objects.create_user("ops2", password=PASSWORD, is_staff=True)
    victim_client = signed_in_staff("ops2")
    admin_client = signed_in_staff()
    [info] = selectors.sessions_for_user(victim)
    with outage(redis_server, how, request):
        # The sessions page lists the victim's (database) session and revokes it.
        page = admin_client.get(f"/admin/ops/sessions/?user={victim.pk}&format=json")
        assert page.status_code == 200, page.content[:300]
        assert [s["ref"] for s in page.json()["sessions"]] == [info.ref]
        assert page.json()["unreachable"] == ["Redis"]
        html = admin_client.get(f"/admin/ops/sessions/?user={victim.pk}").content
        assert b"cannot be listed or revoked right now" in html
        response = admin_client.post(
            f"/admin/ops/sessions/revoke/?user={victim.pk}&ref={info.ref}",
            {"user": victim.pk, "ref": info.ref, "reason": "stolen laptop"},
        )
        assert response.status_code == 302
        assert victim_client.get("/admin/").status_code == 302
    assert victim_client.get("/admin/").status_code == 302  # Redis is back: still revoked
    assert selectors.sessions_for_user(victim) == []
    assert AuditEvent.objects.filter(action="session.revoke").count() == 1


def test_revoke_all_during_the_outage_changes_nothing_or_everything(staff, world, redis_server, request):
    owner_client = Client()
    assert sign_in(owner_client, "/portal/login/", world.a_owner.username).status_code == 302
    # SIGSTOP: Redis comes back with its data, so "intact" is checked against the same sessions.
    with outage(redis_server, "pause", request):
        with pytest.raises(REDIS_UNAVAILABLE_ERRORS):
            sessions_revoke_all(user=world.a_owner, actor=staff)
        assert not AuditEvent.objects.filter(action="session.revoke_all").exists()
    assert owner_client.get(f"/portal/t/{world.a.slug}/").status_code == 200  # intact: nothing was revoked


def test_staff_logout_during_the_outage_fully_ends_the_session(staff, redis_server, request):
    client = signed_in_staff()
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with outage(redis_server, "kill", request):
        response = client.post("/admin/logout/")
        assert response.status_code == 200
    stolen = Client()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = key
    assert stolen.get("/admin/").status_code == 302
    assert selectors.sessions_for_user(staff) == []


def test_owner_logout_during_the_outage_is_a_503_and_changes_nothing(world, redis_server, request):
    client = Client()
    assert sign_in(client, "/portal/login/", world.a_owner.username).status_code == 302
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with outage(redis_server, "pause", request):  # Redis returns with its data (a kill would lose it)
        response = client.post("/portal/logout/")
        assert response.status_code == 503, response.content[:300]
        assert response["Retry-After"]
        assert settings.SESSION_COOKIE_NAME not in response.cookies  # the cookie is not dropped either
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == key
    tenant_page = f"/portal/t/{world.a.slug}/"
    assert client.get(tenant_page).status_code == 200  # intact
    assert client.post("/portal/logout/").status_code == 302
    assert client.get(tenant_page).status_code == 302


def test_cached_db_logout_during_the_outage_leaves_both_copies_or_neither(staff, redis_server, request, settings):
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.contrib.sessions.models import Session
    from django.core.cache import caches

    settings.SESSION_ENGINE = "resilience.sessions.backends.cached_db"
    client = signed_in_staff()
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with outage(redis_server, "pause", request):
        assert client.post("/admin/logout/").status_code == 503
    # Django deleted the row first, leaving the cached copy to sign the user in again later.
    assert Session.objects.filter(session_key=key).exists()
    assert caches[settings.SESSION_CACHE_ALIAS].get(KEY_PREFIX + key) is not None
    assert client.get("/admin/").status_code == 200
    assert client.post("/admin/logout/").status_code == 200
    assert not Session.objects.filter(session_key=key).exists()
    assert caches[settings.SESSION_CACHE_ALIAS].get(KEY_PREFIX + key) is None


def test_session_revoke_of_a_database_session_works_during_the_outage(staff, redis_server, request):
    client = signed_in_staff()
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with outage(redis_server, "pause", request):
        assert session_revoke(session_key=key, actor=staff, reason="incident") == str(staff.pk)
    assert client.get("/admin/").status_code == 302


def test_live_server_staff_keep_the_redis_page_through_a_kill(live_server, staff, redis_server):
    import requests

    http = requests.Session()
    login = f"{live_server.url}/admin/login/"
    http.get(login)
    response = http.post(
        login,
        data={"username": "root", "password": PASSWORD, "next": "/admin/"},
        headers={"Referer": login, "X-CSRFToken": http.cookies["csrftoken"]},
        allow_redirects=False,
    )
    assert response.status_code == 302
    redis_server.kill()
    try:
        page = http.get(f"{live_server.url}{REDIS_PAGE}", allow_redirects=False)
        assert page.status_code in (200, 503) and "id_username" not in page.text
        assert http.get(f"{live_server.url}{REDIS_PAGE}?format=json").json()["ok"] is False
    finally:
        redis_server.start()
