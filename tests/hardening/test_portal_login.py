"""The portal sign-in is throttled (per username) and audited like the admin's."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_portal_sign_in_is_audited_and_throttled(world):
    client = Client()
    username = world.a_owner.username
    assert client.post("/portal/login/", {"username": username, "password": PASSWORD}).status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert login.after == {"via": "portal"} and login.actor_label == username

    statuses = [
        Client().post("/portal/login/", {"username": username, "password": "wrong-password"}).status_code
        for _ in range(8)
    ]
    assert 429 in statuses, statuses
    assert statuses[0] == 200
    throttled = Client().post("/portal/login/", {"username": username, "password": PASSWORD})
    assert throttled.status_code == 429 and throttled["Retry-After"]
    assert b"Too many attempts" in throttled.content
    failures = AuditEvent.objects.filter(action="auth.login_failed")
    assert failures.count() == statuses.count(200)  # each refused attempt audited, throttled ones never reach auth
    assert all(f.after == {"username": username, "via": "portal"} for f in failures)
    assert "wrong-password" not in str(list(AuditEvent.objects.values()))
