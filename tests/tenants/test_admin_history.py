"""The admin's History pages and the index's recent actions read the audit trail; values show as JSON and names."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.services.apikeys import apikey_revoke
from tenants.services.flags import flag_set_override, flag_update
from tenants.services.plans import plan_update
from tenants.services.tenants import tenant_suspend, tenant_update

from .factories import make_flag, make_key, make_plan, make_staff, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def root():
    return make_staff("root")


@pytest.fixture
def staff_client(root):
    client = Client()
    client.force_login(root)
    return client


def test_tenant_history_lists_its_audit_events_newest_first(staff_client, root):
    gold = make_plan("gold")
    tenant = make_tenant("acme")
    other = make_tenant("globex")
    tenant_update(tenant=tenant, plan=gold, actor=root)
    tenant_suspend(tenant=tenant, reason="unpaid invoice", actor=root)
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=root)
    tenant_update(tenant=other, name="Globex Corp", actor=root)

    body = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/history/").content.decode()

    order = [body.index(action) for action in ("flag.set_override", "tenant.suspend", "tenant.update", "tenant.create")]
    assert order == sorted(order)
    assert "unpaid invoice" in body
    assert "Globex Corp" not in body
    assert "root" in body


@pytest.mark.parametrize("kind", ["plan", "flag", "apikey"])
def test_plan_flag_and_key_histories_read_the_audit_trail(staff_client, root, kind):
    if kind == "plan":
        obj = make_plan("gold")
        plan_update(plan=obj, actor=root, daily_quota=500)
        expected = ["plan.create", "plan.update"]
    elif kind == "flag":
        obj = make_flag("beta")
        flag_update(flag=obj, actor=root, description="Beta features")
        flag_set_override(tenant=make_tenant("acme"), flag=obj, enabled=True, actor=root)
        expected = ["flag.create", "flag.update", "flag.set_override"]
    else:
        obj, _secret = make_key(make_tenant("acme"))
        apikey_revoke(api_key=obj, actor=root)
        expected = ["apikey.issue", "apikey.revoke"]

    response = staff_client.get(f"/admin/tenants/{kind}/{obj.pk}/history/")

    assert response.status_code == 200
    body = response.content.decode()
    for action in expected:
        assert action in body
    assert "No audit events about this object" not in body


def test_history_shows_before_and_after_as_json_with_names(staff_client, root):
    gold = make_plan("gold")
    tenant = make_tenant("acme")
    tenant_update(tenant=tenant, plan=gold, upstream_url="http://agent.acme.test", actor=root)

    body = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/history/").content.decode()

    assert "Gold" in body  # the plan's name, not its id
    assert "&quot;http://agent.acme.test&quot;" in body  # JSON strings, not Python reprs
    table = body[body.index('id="change-history"') :]
    assert "&#x27;" not in table and "None" not in table


def test_audit_event_detail_shows_json_names_and_no_inline_colours(staff_client, root):
    gold = make_plan("gold")
    tenant = make_tenant("acme")
    tenant_update(tenant=tenant, name="Acme Inc", plan=gold, actor=root)
    event = AuditEvent.objects.get(action="tenant.update")

    body = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/").content.decode()

    assert "&quot;Acme Inc&quot;" in body
    assert "Gold" in body
    assert "plan 1" not in body and "&#x27;Acme&#x27;" not in body
    assert "background:#fff3cd" not in body and 'style="background' not in body
    assert 'class="changed"' in body


def test_index_recent_actions_come_from_the_audit_trail(staff_client, root):
    tenant = make_tenant("acme")
    tenant_suspend(tenant=tenant, reason="abuse", actor=root)
    make_tenant("bystander")  # written by the system, not by root

    body = staff_client.get("/admin/").content.decode()

    recent = body[body.index('id="recent-actions-module"') :]
    assert "tenant.suspend" in recent
    assert f"/admin/tenants/tenant/{tenant.pk}/change/" in recent
    assert "bystander" not in recent
    assert "None available" not in recent
