"""Portal login (session key rotated), logout, and "log out everywhere" through the session index."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent

from .conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

LOGIN = "/portal/login/"


def store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def test_login_page_is_django_username_password_form(client):
    html = client.get(LOGIN).content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert 'for="id_username"' in html and 'for="id_password"' in html
    assert 'autocomplete="current-password"' in html


def test_login_rotates_the_session_key(world):
    client = Client()
    anonymous = client.session  # an anonymous session exists before login
    anonymous["visited"] = True
    anonymous.save()
    old_key = anonymous.session_key
    response = client.post(LOGIN, {"username": "a-owner", "password": PASSWORD})
    assert response.status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not store()().exists(old_key)
    assert store()(new_key).get("_auth_user_id") == str(world.a_owner.pk)


def test_login_lands_on_the_users_tenant_and_honours_safe_next(world):
    client = Client()
    response = client.post(LOGIN, {"username": "a-owner", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:tenant_home", kwargs={"tenant": "acme"})
    client = Client()
    response = client.post(LOGIN + "?next=/portal/t/acme/usage/", {"username": "a-owner", "password": PASSWORD})
    assert response["Location"] == "/portal/t/acme/usage/"
    client = Client()
    response = client.post(LOGIN, {"username": "a-owner", "password": PASSWORD, "next": "https://evil.example/phish"})
    assert response["Location"] == reverse("portal:index")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "a-owner", "password": "wrong"}, "Please enter a correct username and password"),
        ({"username": "", "password": ""}, "This field is required"),
        ({"username": "x" * 100_000, "password": "x"}, "Please enter a correct username and password"),
        ({"username": "a-owner\x00", "password": "x"}, "Null characters are not allowed"),
    ],
)
def test_login_errors_are_explained(world, client, data, message):
    response = client.post(LOGIN, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_survives_non_utf8_bytes(world, client):
    response = client.post(
        LOGIN, data=b"username=%ff%fe&password=%c3%28", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    response = client.get(LOGIN + "?next=%ff%fe%fd")
    assert response.status_code == 200


def test_logout_is_a_post_and_ends_the_session(world):
    client = client_for(world.a_owner)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get(reverse("portal:logout")).status_code == 405
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not store()().exists(key)
    assert client.get(reverse("portal:index"))["Location"].startswith(LOGIN)


def test_log_out_everywhere_ends_every_session_of_the_user_only(world):
    laptop, phone = client_for(world.a_owner), client_for(world.a_owner)
    other = client_for(world.a_member)
    laptop.get(reverse("portal:account"))
    html = laptop.get(reverse("portal:account")).content.decode()
    assert html.count("<tr>") >= 3  # header + two sessions of a-owner
    response = laptop.post(reverse("portal:account"), follow=True)
    assert response.redirect_chain[-1][0] == LOGIN
    assert "Logged out everywhere (2 sessions ended)" in response.content.decode()
    for client in (laptop, phone):
        assert client.get(reverse("portal:tenant_home", kwargs={"tenant": "acme"})).status_code == 302
    assert other.get(reverse("portal:tenant_home", kwargs={"tenant": "acme"})).status_code == 200
    assert AuditEvent.objects.filter(action="session.revoke_all", actor_user=world.a_owner).count() == 1


def test_login_is_throttled_per_username(world, settings):
    settings.RESILIENCE_FORM_RATE_USERNAME = "3/h"
    client = Client()
    statuses = [client.post(LOGIN, {"username": "a-owner", "password": "wrong"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Even the right password waits: the attacker must not learn it from a different answer.
    response = client.post(LOGIN, {"username": "A-Owner", "password": PASSWORD})
    assert response.status_code == 429 and "Retry-After" in response
    assert "_auth_user_id" not in client.session
