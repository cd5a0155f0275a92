"""Throttles of the sign-in and password forms: 429 page, usage lookup, Redis outage, failures only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from resilience.ratelimit.selectors import form_throttle_usage

LOGIN = "/admin/login/"


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "right-pass-123")


def _attempt(client, username="root", password="wrong", ip="10.1.1.1"):  # noqa: S107 - a test credential
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@override_settings(RESILIENCE_FORM_RATE_USERNAME="3/h", RESILIENCE_FORM_RATE_IP="100/h")
def test_per_username_throttle_answers_a_friendly_429(client, admin_user):
    answers = [_attempt(client, ip=f"10.1.1.{n}") for n in range(4)]  # a new IP each time
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    page = answers[-1]
    assert "Too many attempts" in page.content.decode()
    assert "for this account" in page.content.decode()
    assert int(page["Retry-After"]) >= 1
    # Another account from the same addresses is unaffected.
    assert _attempt(client, username="someone-else", ip="10.1.1.1").status_code == 200


@override_settings(RESILIENCE_FORM_RATE_USERNAME="100/h", RESILIENCE_FORM_RATE_IP="2/h")
def test_per_ip_throttle_counts_every_username(client, admin_user):
    answers = [_attempt(client, username=f"user{n}") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "from your network" in answers[-1].content.decode()
    assert _attempt(client, username="user9", ip="10.9.9.9").status_code == 200


@override_settings(RESILIENCE_FORM_RATE_USERNAME="3/h", RESILIENCE_FORM_RATE_IP="10/h")
def test_usage_lookup_for_the_ops_pages(client, admin_user):
    _attempt(client, username="Root", ip="10.2.2.2")
    _attempt(client, username="root", ip="10.2.2.2")
    usage = form_throttle_usage(ip="10.2.2.2", username="ROOT")
    assert usage["username"]["count"] == 2 and usage["username"]["remaining"] == 1
    assert usage["username"]["rate"] == "3/h"
    assert usage["ip"]["count"] == 2 and usage["ip"]["limit"] == 10
    assert form_throttle_usage(ip="10.3.3.3")["ip"] is None  # nothing counted


def test_get_is_not_counted(client, db):
    assert {client.get(LOGIN).status_code for _ in range(30)} == {200}


def test_redis_down_fail_open_lets_sign_in_through(client, admin_user, redis_server, settings):
    # Only the `settings` fixture here: mixed with @override_settings its teardown would
    # restore the decorator's values and leak them into later tests.
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = "open"
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"  # isolate the throttle from session storage
    redis_server.kill()
    answer = client.post(LOGIN, {"username": "root", "password": "right-pass-123"}, REMOTE_ADDR="10.4.4.4")
    assert answer.status_code == 302  # signed in, not a 500


def test_redis_down_fail_closed_pauses_sign_in_with_a_page(client, admin_user, redis_server, settings):
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = "closed"
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    redis_server.kill()
    answer = _attempt(client, password="right-pass-123")
    assert answer.status_code == 503
    assert "Temporarily unavailable" in answer.content.decode()


def test_password_change_is_throttled_per_signed_in_user(client, admin_user, settings):
    settings.RESILIENCE_FORM_RATE_USERNAME = "2/h"
    settings.RESILIENCE_FORM_RATE_IP = "100/h"
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    client.force_login(admin_user)
    form = {"old_password": "wrong", "new_password1": "N3w-pass-word!", "new_password2": "N3w-pass-word!"}
    answers = [client.post("/admin/password_change/", form) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert form_throttle_usage(username="root")["username"] is None  # its own group, not the sign-in one


@override_settings(RESILIENCE_RATE_LIMIT_ENABLED=False, RESILIENCE_FORM_RATE_USERNAME="1/h")
def test_rate_limit_enabled_false_turns_the_form_throttles_off(client, admin_user, redis_client):
    assert {_attempt(client).status_code for _ in range(4)} == {200}
    assert not list(redis_client.scan_iter("agentapi:rl:form:*"))
