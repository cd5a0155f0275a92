"""Sign-ins, sign-outs and failed attempts land in the audit trail, never with a password."""

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True)


def test_admin_login_logout_and_failure_are_audited(client, staff):
    client.post("/admin/login/", {"username": "ops", "password": "wrong-password-xyz"})
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD})
    client.post("/admin/logout/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label", "ip"))
    assert actions == [
        ("auth.login_failed", "system", "127.0.0.1"),
        ("auth.login", "ops", "127.0.0.1"),
        ("auth.logout", "ops", "127.0.0.1"),
    ]
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.after == {"username": "ops", "via": "admin"}
    dumped = str(list(AuditEvent.objects.values()))
    assert "wrong-password-xyz" not in dumped and PASSWORD not in dumped


@pytest.mark.parametrize(("trusted", "recorded"), [(0, "10.0.0.1"), (1, "203.0.113.9")])
def test_audit_records_the_client_behind_trusted_proxies_only(client, staff, settings, trusted, recorded):
    # A spoofed X-Forwarded-For must not be believed unless RATE_LIMIT_TRUSTED_PROXIES says a proxy set it.
    settings.RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES = trusted
    client.post(
        "/admin/login/",
        {"username": "ops", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert AuditEvent.objects.get(action="auth.login").ip == recorded
