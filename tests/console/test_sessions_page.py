"""The sessions page: list, search, revoke one / all with a reason, audited."""

import json

import pytest
from django.conf import settings
from django.test import Client

from audit.models import AuditEvent
from resilience.sessions.selectors import sessions_for_user
from tests.console.conftest import PASSWORD


def _browser_of(user, ip="198.51.100.9", ua="Firefox/140"):
    browser = Client()
    browser.post("/admin/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    return browser


def test_lists_users_with_sessions_and_a_users_sessions(client, operator, viewer):
    _browser_of(viewer)
    client.force_login(operator)
    data = client.get("/admin/ops/sessions/", {"format": "json"}).json()
    assert sorted(u["username"] for u in data["users"]) == ["operator", "viewer"]
    html = client.get("/admin/ops/sessions/", {"user": viewer.pk}).content.decode()
    assert "198.51.100.9" in html and "Firefox/140" in html and "Revoke all" in html
    data = client.get("/admin/ops/sessions/", {"user": viewer.pk, "format": "json"}).json()
    assert data["user"]["username"] == "viewer" and data["sessions"][0]["ip"] == "198.51.100.9"
    assert "session_key" not in data["sessions"][0]


def test_search_by_user(client, operator, viewer, customer):
    _browser_of(viewer)
    client.force_login(operator)
    data = client.get("/admin/ops/sessions/", {"q": "VIEW", "format": "json"}).json()
    assert data["users"] == [
        {"id": viewer.pk, "username": "viewer", "email": "viewer@example.com", "staff": True, "sessions": 1}
    ]
    assert client.get("/admin/ops/sessions/", {"q": "nobody"}).content.decode().count("No user matches") == 1


@pytest.mark.parametrize("query", [{"user": "abc"}, {"user": "-3"}, {"cursor": "x"}])
def test_bad_filters_are_form_errors_not_500(client, operator, query):
    client.force_login(operator)
    assert client.get("/admin/ops/sessions/", query).status_code == 200
    twin = client.get("/admin/ops/sessions/", {**query, "format": "json"})
    assert twin.status_code == 400 and twin.json()["errors"]


def test_unknown_user_is_a_clear_error(client, operator):
    client.force_login(operator)
    twin = client.get("/admin/ops/sessions/", {"user": 999, "format": "json"})
    assert twin.status_code == 400 and "No user with id 999" in str(twin.json()["errors"])


def test_revoke_one_asks_for_a_reason_and_is_audited(client, operator, viewer):
    victim = _browser_of(viewer)
    [info] = sessions_for_user(viewer)
    client.force_login(operator)
    url = f"/admin/ops/sessions/revoke/?user={viewer.pk}&ref={info.ref}"
    confirm = client.get(url).content.decode()
    assert "198.51.100.9" in confirm and 'name="reason"' in confirm
    response = client.post("/admin/ops/sessions/revoke/", {"user": viewer.pk, "ref": info.ref, "reason": ""})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert len(sessions_for_user(viewer)) == 1

    response = client.post(
        "/admin/ops/sessions/revoke/", {"user": viewer.pk, "ref": info.ref, "reason": "stolen phone"}
    )
    assert response.status_code == 302 and response["Location"] == f"/admin/ops/sessions/?user={viewer.pk}"
    assert sessions_for_user(viewer) == []
    assert victim.get("/admin/").status_code == 302
    event = AuditEvent.objects.get(action="session.revoke")
    assert (event.actor_label, event.reason, event.object_id) == ("operator", "stolen phone", info.ref)
    page = client.get(response["Location"]).content.decode()
    assert f"Revoked session {info.ref} of viewer" in page


def test_revoke_of_a_gone_session_is_a_message(client, operator, viewer):
    client.force_login(operator)
    response = client.get(f"/admin/ops/sessions/revoke/?user={viewer.pk}&ref=0123456789abcdef", follow=True)
    assert "already ended" in response.content.decode()
    response = client.get("/admin/ops/sessions/revoke/?user=x&ref=zz", follow=True)
    assert response.status_code == 200 and "Enter a whole number" in response.content.decode()


def test_revoke_all_keeps_the_admins_own_session(client, operator):
    others = [_browser_of(operator, ip=f"192.0.2.{i}") for i in range(2)]
    client.force_login(operator)
    client.get("/admin/")
    assert len(sessions_for_user(operator)) == 3
    response = client.post("/admin/ops/sessions/revoke-all/", {"user": operator.pk, "reason": "rotate everything"})
    assert response.status_code == 302
    [kept] = sessions_for_user(operator)
    assert kept.session_key == client.cookies[settings.SESSION_COOKIE_NAME].value
    assert all(other.get("/admin/").status_code == 302 for other in others)
    assert AuditEvent.objects.get(action="session.revoke_all").reason == "rotate everything"


def test_sessions_page_lists_from_the_database_when_redis_is_down(client, operator, redis_server, settings):
    settings.SESSION_ENGINE = "resilience.sessions.backends.cached_db"
    client.post("/admin/login/", {"username": "operator", "password": PASSWORD})
    redis_server.kill()
    data = client.get("/admin/ops/sessions/", {"user": operator.pk, "format": "json"}).json()
    assert len(data["sessions"]) == 1
    [info] = sessions_for_user(operator)
    response = client.post("/admin/ops/sessions/revoke/", {"user": operator.pk, "ref": info.ref, "reason": "outage"})
    page = client.get(response["Location"]).content.decode()
    # The cached copy cannot be deleted while Redis is down, so nothing is revoked (it would come back).
    assert "Nothing was revoked: ConnectionError" in page and len(sessions_for_user(operator)) == 1
    assert not AuditEvent.objects.filter(action="session.revoke").exists()


def test_sessions_page_says_what_failed_when_the_redis_engine_is_down(rf, operator, redis_server, settings):
    from django.contrib.sessions.backends.db import SessionStore

    from console.views import sessions

    settings.SESSION_ENGINE = "resilience.sessions.backends.redis"  # Redis only: nothing can be listed
    redis_server.kill()
    for query in ({}, {"user": operator.pk}, {"q": "oper"}):
        request = rf.get("/admin/ops/sessions/", query)
        request.user, request.session = operator, SessionStore()
        html = sessions(request).content.decode()
        assert "Session storage is unreachable" in html and "Failing since" in html
        # The first failures show the connection error; then the Redis breaker opens and says so.
        assert "ConnectionError" in html or "RedisUnavailable" in html
        request = rf.get("/admin/ops/sessions/", {**query, "format": "json"})
        request.user, request.session = operator, SessionStore()
        response = sessions(request)
        assert response.status_code == 503 and json.loads(response.content)["failure"]["error"].startswith(
            ("ConnectionError", "RedisUnavailable")
        )
