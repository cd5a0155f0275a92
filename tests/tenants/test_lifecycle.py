"""Tenant lifecycle: trial -> active, suspend/resume back to the prior serving state, offboard; all audited."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.exceptions import TenantsError
from tenants.models import Tenant
from tenants.services.tenants import (
    tenant_activate,
    tenant_offboard,
    tenant_resume,
    tenant_set_upstream_credentials,
    tenant_suspend,
)

from .factories import make_key, make_staff, make_tenant

pytestmark = pytest.mark.django_db


def last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


def test_activate_moves_a_trial_to_active_and_only_a_trial():
    staff = make_staff()
    tenant = make_tenant("acme")
    tenant_activate(tenant=tenant, actor=staff, ip="10.0.0.2")
    assert Tenant.objects.get().status == "active" and tenant.status == "active"
    event = last("tenant.activate")
    assert (event.before["status"], event.after["status"], event.ip) == ("trial", "active", "10.0.0.2")
    with pytest.raises(TenantsError, match="only a trial tenant"):
        tenant_activate(tenant=tenant, actor=staff)
    tenant_suspend(tenant=tenant, reason="abuse", actor=staff)
    with pytest.raises(TenantsError, match="resume it"):
        tenant_activate(tenant=tenant, actor=staff)


@pytest.mark.parametrize("start", ["trial", "active"])
def test_resume_returns_to_the_state_before_the_suspension(start):
    tenant = make_tenant("acme", status=start)
    tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    tenant_suspend(tenant=tenant, reason="still unpaid", actor=None)  # a second suspension keeps the memory
    tenant_resume(tenant=tenant, actor=None)
    assert Tenant.objects.get().status == start
    assert last("tenant.resume").after["status"] == start


def test_resume_refuses_a_tenant_that_is_not_suspended():
    tenant = make_tenant("acme")
    with pytest.raises(TenantsError, match="not suspended"):
        tenant_resume(tenant=tenant, actor=None)
    assert Tenant.objects.get().status == "trial"


def test_offboard_needs_a_reason_erases_credentials_and_is_final():
    staff = make_staff()
    tenant = make_tenant("acme")
    tenant_set_upstream_credentials(tenant=tenant, secret="tok-1", actor=staff)
    make_key(tenant)
    with pytest.raises(TenantsError, match="reason"):
        tenant_offboard(tenant=tenant, reason="  ", actor=staff)
    tenant_offboard(tenant=tenant, reason="contract ended", actor=staff)
    stored = Tenant.objects.get()
    assert stored.status == "deleted" and stored.status_reason == "contract ended"
    assert stored.upstream_credentials == ""
    event = last("tenant.offboard")
    assert (event.before["status"], event.after["status"]) == ("trial", "deleted")
    assert (event.before["upstream_credentials"], event.after["upstream_credentials"]) == ("set", "")
    for service in (tenant_resume, tenant_activate):
        with pytest.raises(TenantsError, match="offboarded"):
            service(tenant=tenant, actor=staff)
    with pytest.raises(TenantsError, match="offboarded"):
        tenant_offboard(tenant=tenant, reason="again", actor=staff)
    with pytest.raises(TenantsError, match="offboarded"):
        tenant_suspend(tenant=tenant, reason="x", actor=staff)


# ------------------------------------------------------------------ admin actions
@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def act(client, action, tenants, reason=""):
    return client.post(
        "/admin/tenants/tenant/",
        {"action": action, "_selected_action": [t.pk for t in tenants], "reason": reason},
        follow=True,
    )


def test_admin_activate_resume_and_offboard_actions(staff_client):
    trial, paused = make_tenant("acme"), make_tenant("globex")
    tenant_suspend(tenant=paused, reason="unpaid", actor=None)

    body = act(staff_client, "activate", [trial, paused]).content.decode()
    assert "Activated 1 tenant" in body and "globex" in body and "resume it" in body
    assert Tenant.objects.get(slug="acme").status == "active"

    act(staff_client, "resume", [paused])
    assert Tenant.objects.get(slug="globex").status == "trial"
    assert last("tenant.resume").actor_label == "root"

    body = act(staff_client, "offboard", [trial]).content.decode()
    assert "Give a reason" in body
    assert Tenant.objects.get(slug="acme").status == "active"
    body = act(staff_client, "offboard", [trial], reason="contract ended").content.decode()
    assert "Offboarded 1 tenant" in body
    assert Tenant.objects.get(slug="acme").status == "deleted"
    assert last("tenant.offboard").reason == "contract ended"
