"""Admin actions and the admin's password change refuse users without the permission they need."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.shortcuts import resolve_url
from django.test import Client

from tenants.models import ApiKey, Tenant
from tenants.services.tenants import tenant_suspend, tenant_update
from tests.portal.sweep import world_state
from tests.tenants.factories import make_staff

from .conftest import PASSWORD, staff_with

pytestmark = pytest.mark.django_db

TENANT_ACTIONS = ["activate", "suspend", "resume", "offboard", "test_upstream"]


@pytest.fixture
def armed(world, upstream_url, upstream):
    """Give acme a reachable upstream and suspend globex, so every tenant action would change something."""
    tenant_update(tenant=world.a, upstream_url=upstream_url, actor=None)
    tenant_suspend(tenant=world.b, reason="unpaid", actor=None)
    return world, upstream[1]


def _target(world, action):
    return world.b.pk if action == "resume" else world.a.pk


def _run(client, url, action, pk):
    return client.post(url, {"action": action, "_selected_action": [pk], "index": "0", "reason": "sweep check"})


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    client.get("/admin/")  # session activity settles before anything is compared
    return client


def test_view_only_staff_is_offered_no_action(armed, view_only_staff):
    client = _signed_in(view_only_staff)
    tenants = client.get("/admin/tenants/tenant/").content.decode()
    keys = client.get("/admin/tenants/apikey/").content.decode()
    assert "acme" in tenants and armed[0].a_key.prefix in keys  # the lists themselves are visible
    for name in TENANT_ACTIONS:
        assert f'value="{name}"' not in tenants
    assert 'value="revoke"' not in keys


@pytest.mark.parametrize("action", TENANT_ACTIONS)
def test_view_only_staff_cannot_run_a_tenant_action(armed, view_only_staff, action):
    world, handler = armed
    client = _signed_in(view_only_staff)
    before, hits = world_state(), handler.hits
    response = _run(client, "/admin/tenants/tenant/", action, _target(world, action))
    assert response.status_code == 403
    assert world_state() == before and handler.hits == hits


def test_view_only_staff_cannot_revoke_an_api_key(armed, view_only_staff):
    world, _ = armed
    client = _signed_in(view_only_staff)
    before = world_state()
    assert _run(client, "/admin/tenants/apikey/", "revoke", world.a_key.pk).status_code == 403
    assert world_state() == before
    assert ApiKey.objects.get(pk=world.a_key.pk).revoked_at is None


def test_change_staff_suspends_resumes_and_revokes_but_cannot_probe(armed, change_staff):
    world, handler = armed
    client = _signed_in(change_staff)
    assert _run(client, "/admin/tenants/tenant/", "suspend", world.a.pk).status_code == 302
    assert Tenant.objects.get(pk=world.a.pk).status == Tenant.Status.SUSPENDED
    assert _run(client, "/admin/tenants/tenant/", "resume", world.b.pk).status_code == 302
    assert Tenant.objects.get(pk=world.b.pk).status == Tenant.Status.TRIAL  # the state it was suspended from
    assert _run(client, "/admin/tenants/apikey/", "revoke", world.a_key.pk).status_code == 302
    assert ApiKey.objects.get(pk=world.a_key.pk).revoked_at is not None
    hits = handler.hits
    assert _run(client, "/admin/tenants/tenant/", "test_upstream", world.a.pk).status_code == 403
    assert handler.hits == hits


def test_the_probe_permission_alone_allows_probing(armed):
    world, handler = armed
    prober = staff_with("prober", "tenants.view_tenant", "tenants.probe_upstream")
    client = _signed_in(prober)
    listing = client.get("/admin/tenants/tenant/").content.decode()
    assert 'value="test_upstream"' in listing and 'value="suspend"' not in listing
    response = _run(client, "/admin/tenants/tenant/", "test_upstream", world.a.pk)
    assert response.status_code == 302 and handler.hits == 1
    assert _run(client, "/admin/tenants/tenant/", "suspend", world.a.pk).status_code == 403
    assert Tenant.objects.get(pk=world.a.pk).status != Tenant.Status.SUSPENDED


# ------------------------------------------------------------------ password change
def test_anonymous_password_change_goes_to_the_admin_login(client, world):
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/password_change/"
    assert client.get(response["Location"]).status_code == 200


def test_non_staff_cannot_change_their_password_through_the_admin(world):
    client = _signed_in(world.a_owner)
    assert client.get("/admin/password_change/")["Location"].startswith("/admin/login/")
    before = world_state()
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "Another-pass-987", "new_password2": "Another-pass-987"},
    )
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert world_state() == before
    world.a_owner.refresh_from_db()
    assert world.a_owner.check_password(PASSWORD)


def test_staff_still_change_their_password(world, view_only_staff):
    client = _signed_in(view_only_staff)
    assert client.get("/admin/password_change/").status_code == 200
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "Another-pass-987", "new_password2": "Another-pass-987"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/done/"


def test_the_default_login_url_is_a_page_that_exists(client, world):
    assert client.get(resolve_url(django_settings.LOGIN_URL)).status_code == 200


# ------------------------------------------------------------------ inlines on the tenant page
def _tenant_post(world, **extra):
    owner = world.a.memberships.get(user=world.a_owner)
    return {
        "name": world.a.name,
        "plan": world.a.plan_id,
        "settings": "{}",
        "upstream_url": "",
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": owner.pk,
        "memberships-0-tenant": world.a.pk,
        "memberships-0-user": world.a_owner.pk,
        "memberships-0-role": "owner",
        "memberships-1-tenant": world.a.pk,
        "memberships-1-user": world.outsider.pk,
        "memberships-1-role": "owner",
        "flag_overrides-TOTAL_FORMS": "1",
        "flag_overrides-INITIAL_FORMS": "0",
        "flag_overrides-0-flag": world.locked.pk,
        "flag_overrides-0-enabled": "on",
        "flag_overrides-0-rollout_percent": "100",
        **extra,
    }


def test_change_rights_on_tenants_do_not_add_members_or_overrides(world, change_staff):
    # change_tenant without add_membership / add_tenantflag: the inline rows are ignored, not saved.
    client = _signed_in(change_staff)
    response = client.post(f"/admin/tenants/tenant/{world.a.pk}/change/", _tenant_post(world, name="Acme Renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Tenant.objects.get(pk=world.a.pk).name == "Acme Renamed"
    assert not world.a.memberships.filter(user=world.outsider).exists()
    assert not world.a.flag_overrides.exists()
    # The same form from a superuser adds both, so the data would have written had the check been missing.
    root = _signed_in(make_staff("root"))
    assert root.post(f"/admin/tenants/tenant/{world.a.pk}/change/", _tenant_post(world)).status_code == 302
    assert world.a.memberships.filter(user=world.outsider).exists() and world.a.flag_overrides.exists()


def test_view_only_staff_cannot_post_the_tenant_form(world, view_only_staff):
    client = _signed_in(view_only_staff)
    before = world_state()
    response = client.post(f"/admin/tenants/tenant/{world.a.pk}/change/", _tenant_post(world, name="Hijacked"))
    assert response.status_code == 403
    assert world_state() == before


# ------------------------------------------------------------------ change requests
@pytest.fixture
def pending_change(world, change_staff):
    from changes.services import change_request_create
    from tenants.services.flags import flag_create

    flag_create(
        key="payments", description="", default=False, tenant_editable=False, requires_approval=True, actor=None
    )
    return change_request_create(
        operation="flag.update", params={"flag": "payments", "fields": {"default": True}}, author=change_staff
    )


@pytest.mark.parametrize("action", ["approve", "reject", "cancel"])
def test_view_only_staff_see_change_requests_but_cannot_act_on_them(pending_change, view_only_staff, action):
    client = _signed_in(view_only_staff)
    listing = client.get("/admin/changes/changerequest/").content.decode()
    assert "payments" in listing and f'value="{action}"' not in listing
    before = world_state()
    response = _run(client, "/admin/changes/changerequest/", action, pending_change.pk)
    assert response.status_code == 403
    assert world_state() == before
    assert type(pending_change).objects.get(pk=pending_change.pk).state == "pending_approval"


def test_change_staff_cancel_but_cannot_approve_or_reject(pending_change, change_staff):
    client = _signed_in(change_staff)
    for action in ("approve", "reject"):
        assert _run(client, "/admin/changes/changerequest/", action, pending_change.pk).status_code == 403
    assert _run(client, "/admin/changes/changerequest/", "cancel", pending_change.pk).status_code == 302
    assert type(pending_change).objects.get(pk=pending_change.pk).state == "cancelled"
