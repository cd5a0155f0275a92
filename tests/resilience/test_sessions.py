"""Sessions live in Redis (SESSION_STORAGE=redis), staff sessions in the database; both survive a request cycle."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True)


def _session_keys(redis_client):
    prefix = f"{settings.RESILIENCE_KEY_PREFIX}:session:"
    return [key for key in redis_client.scan_iter(match=prefix + "*")]


def test_login_session_is_stored_in_redis_and_survives_requests(client, redis_client, db):
    get_user_model().objects.create_user("owner", password=PASSWORD)
    response = client.post("/portal/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    stored = _session_keys(redis_client)
    assert len(stored) == 1 and stored[0].endswith(session_key)
    ttl = redis_client.ttl(stored[0])
    assert 0 < ttl <= settings.SESSION_COOKIE_AGE
    assert not Session.objects.exists()

    for _ in range(2):
        assert client.get("/portal/").status_code == 200  # signed in (no tenant yet), not sent to sign in


def test_staff_session_is_a_database_row_with_nothing_in_redis(client, staff_user, redis_client):
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 302
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert _session_keys(redis_client) == []
    row = Session.objects.get(session_key=session_key)
    assert row.get_decoded()["_auth_user_id"] == str(staff_user.pk)
    for _ in range(2):
        assert client.get("/admin/").status_code == 200


def test_session_key_rotates_on_login(client, staff_user):
    client.get("/admin/login/")
    session = client.session
    session["pre_login"] = True
    session.save()
    before = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = before

    client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert client.get("/admin/").status_code == 200


def test_admin_shows_banner_when_redis_disabled(admin_client, settings):
    settings.RESILIENCE_REDIS_ENABLED = False
    response = admin_client.get("/admin/")
    assert b"Redis is disabled (REDIS_ENABLE=false)" in response.content
    settings.RESILIENCE_REDIS_ENABLED = True
    assert b"Redis is disabled" not in admin_client.get("/admin/").content
