"""Staff API tokens: created in the admin or by admin_token_create, hashed, scoped, throttled last-use."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from automation.cache import token_used_key
from automation.models import StaffToken
from automation.selectors import staff_token_check, staff_token_touch
from automation.services import staff_token_revoke, token_hash
from tests.automation.factories import grant, make_operator, make_token
from tests.tenants.factories import make_staff, make_user

pytestmark = pytest.mark.django_db


def run(*argv) -> dict:
    out = StringIO()
    call_command("admin_token_create", *argv, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_command_prints_the_secret_once_and_stores_only_its_hash():
    make_operator("robot")
    summary = run("--user", "robot", "--scopes", "tenants:read,flags:write", "--expires", "30d")
    secret = summary["secret"]
    token = StaffToken.objects.get()
    assert secret.startswith(token.prefix + "_") and token.prefix.startswith("sat_")
    assert token.secret_hash == token_hash(secret)
    assert secret not in json.dumps(list(StaffToken.objects.values()), default=str)
    assert token.scopes == ["flags:write", "tenants:read"] == summary["scopes"]
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    event = AuditEvent.objects.get(action="staff_token.create")
    assert event.actor_label == "system" and "admin_token_create" in event.reason and secret not in str(event.after)


def test_command_text_output_shows_the_secret():
    make_operator("robot")
    out = StringIO()
    call_command("admin_token_create", "--user", "robot", "--scopes", "audit:read", stdout=out)
    assert "shown once" in out.getvalue() and "sat_" in out.getvalue()


def test_command_dry_run_creates_nothing_and_prints_no_secret():
    make_operator("robot")
    summary = run("--user", "robot", "--scopes", "audit:read", "--dry-run")
    assert "secret" not in summary and summary["dry_run"] is True
    assert not StaffToken.objects.exists() and not AuditEvent.objects.filter(action="staff_token.create").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "ghost", "--scopes", "audit:read"], "no user 'ghost'"),
        (["--user", "robot", "--scopes", "tenants:nuke"], r"unknown: tenants:nuke.*--scopes"),
        (["--user", "robot", "--scopes", ","], r"non-empty.*--scopes"),
        (["--user", "robot", "--scopes", "audit:read", "--expires", "soon"], "--expires 'soon'"),
        (["--user", "robot", "--scopes", "audit:read", "--expires", "0s"], "positive duration"),
        (["--user", "robot", "--scopes", "keys:write"], r"never broader.*tenants.add_apikey.*--scopes"),
        (["--user", "plain", "--scopes", "audit:read"], r"not an active staff user.*--user"),
    ],
)
def test_command_refuses_bad_input_naming_the_fix(argv, message):
    make_operator("robot", scopes=["audit:read"])
    make_user("plain")
    with pytest.raises(CommandError, match=message):
        run(*argv)
    assert not StaffToken.objects.exists()


def test_check_refuses_revoked_expired_and_deactivated_at_once():
    user = make_operator()
    token, secret = make_token(user)
    assert staff_token_check(secret).token == token
    assert staff_token_check(secret[:-1] + ("A" if secret[-1] != "A" else "B")).error == "invalid_token"
    assert staff_token_check("sat_nope").error == "invalid_token"
    user.is_active = False
    user.save()
    assert staff_token_check(secret).error == "inactive_user"
    user.is_active = True
    user.save()
    StaffToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert staff_token_check(secret).error == "expired_token"
    StaffToken.objects.filter(pk=token.pk).update(expires_at=None)
    staff_token_revoke(token=token, actor=user)
    assert staff_token_check(secret).error == "revoked_token"
    assert AuditEvent.objects.filter(action="staff_token.revoke", actor_user=user).count() == 1


def test_last_use_is_written_once_a_minute_not_per_request(redis_client, django_assert_num_queries):
    token, _ = make_token(make_operator())
    assert staff_token_touch(token) is True
    first = StaffToken.objects.get().last_used_at
    assert first is not None and redis_client.ttl(token_used_key(token.pk)) > 0
    with django_assert_num_queries(0):
        for _ in range(5):
            assert staff_token_touch(token) is False
    redis_client.delete(token_used_key(token.pk))  # the minute is over
    assert staff_token_touch(token) is True and StaffToken.objects.get().last_used_at > first


def test_last_use_without_redis_writes_nothing_and_does_not_fail(redis_server, django_assert_num_queries):
    token, _ = make_token(make_operator())
    redis_server.kill()
    try:
        with django_assert_num_queries(0):
            assert staff_token_touch(token) is False
    finally:
        redis_server.restart()


# ------------------------------------------------------------------------------ the admin
def test_staff_create_their_own_token_in_the_admin_and_see_the_secret_once():
    user = make_operator("alice", scopes=["tenants:read"])
    client = Client()
    client.force_login(user)
    response = client.post(
        "/admin/automation/stafftoken/add/", {"name": "laptop", "scopes": ["tenants:read"], "expires_at": ""}
    )
    assert response.status_code == 200, response.content[:500]
    token = StaffToken.objects.get()
    assert token.user == user and token.scopes == ["tenants:read"]
    assert b"staff-token-secret" in response.content and token.prefix.encode() in response.content
    assert "no-store" in response["Cache-Control"]
    detail = client.get(f"/admin/automation/stafftoken/{token.pk}/change/")
    assert detail.status_code == 200 and b"staff-token-secret" not in detail.content


def test_the_admin_refuses_scopes_beyond_the_users_permissions():
    user = make_operator("alice", scopes=["tenants:read"])
    client = Client()
    client.force_login(user)
    response = client.post("/admin/automation/stafftoken/add/", {"name": "x", "scopes": ["keys:write"]})
    assert response.status_code == 200 and b"never broader" in response.content
    assert not StaffToken.objects.exists()


def test_staff_see_and_revoke_only_their_own_tokens():
    alice = make_operator("alice")
    bob = make_operator("bob")
    own, _ = make_token(alice)
    foreign, _ = make_token(bob)
    client = Client()
    client.force_login(alice)
    listing = client.get("/admin/automation/stafftoken/")
    assert own.prefix.encode() in listing.content and foreign.prefix.encode() not in listing.content
    assert client.get(f"/admin/automation/stafftoken/{foreign.pk}/change/").status_code in (302, 403, 404)
    client.post(
        "/admin/automation/stafftoken/",
        {"action": "revoke", "_selected_action": [own.pk, foreign.pk]},
    )
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert own.revoked_at is not None and foreign.revoked_at is None


def test_grant_helper_reloads_permissions():
    user = make_operator("carol", scopes=[])
    assert not user.has_perm("audit.view_auditevent")
    grant(user, "audit.view_auditevent")
    assert user.has_perm("audit.view_auditevent")


def test_a_superuser_sees_and_revokes_any_token():
    token, _ = make_token(make_operator("alice"))
    client = Client()
    client.force_login(make_staff("root"))
    assert token.prefix.encode() in client.get("/admin/automation/stafftoken/").content
    client.post("/admin/automation/stafftoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_staff_without_the_token_admin_permissions_cannot_create_tokens():
    user = make_user("viewer", is_staff=True)
    grant(user, "automation.view_stafftoken")
    client = Client()
    client.force_login(user)
    assert client.get("/admin/automation/stafftoken/add/").status_code == 403
