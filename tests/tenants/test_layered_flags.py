"""Layered control: an owner's toggle works within the platform's override and never replaces it.

Found by a tenant owner: initech's admin had set a 30 % rollout; one click on "Turn off"
replaced it, and "Turn on" then gave 100 %.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tenants.exceptions import TenantsError
from tenants.models import OwnerToggle, TenantFlag
from tenants.selectors import flags_evaluate, flags_explain
from tenants.services.flags import flag_clear_override, flag_owner_reset, flag_owner_toggle, flag_set_override
from tests.tenants.factories import make_flag, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def initech():
    owner = make_user("initech-owner")
    tenant = make_tenant("initech", owner=owner)
    flag = make_flag("new_editor", tenant_editable=True)
    return tenant, flag, owner


def explained(tenant, key):
    return next(row for row in flags_explain(tenant) if row.key == key)


def test_an_owner_toggle_never_replaces_the_platforms_rollout(initech):
    tenant, flag, owner = initech
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=30, actor=None)

    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    override = TenantFlag.objects.get(tenant=tenant, flag=flag)
    assert (override.enabled, override.rollout_percent, override.source) == (True, 30, "admin")
    assert flags_evaluate(tenant)["new_editor"].enabled is False
    assert explained(tenant, "new_editor").reason == "owner_toggle"

    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, actor=owner)
    row = explained(tenant, "new_editor")
    assert row.reason == "rollout" and row.rollout_percent == 30  # the platform's 30 %, not 100 %
    assert TenantFlag.objects.get(tenant=tenant, flag=flag).rollout_percent == 30


def test_an_owner_cannot_turn_on_what_the_platform_turned_off(initech):
    tenant, flag, owner = initech
    flag_set_override(tenant=tenant, flag=flag, enabled=False, actor=None)
    with pytest.raises(TenantsError, match="platform team has turned"):
        flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, actor=owner)
    assert not OwnerToggle.objects.exists()
    assert flags_evaluate(tenant)["new_editor"].enabled is False


def test_without_a_platform_override_the_owner_decides(initech):
    tenant, flag, owner = initech
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, actor=owner)
    row = explained(tenant, "new_editor")
    assert row.enabled is True and row.reason == "owner_toggle" and row.owner_enabled is True
    assert not TenantFlag.objects.exists()
    event = AuditEvent.objects.filter(action="flag.owner_toggle").latest("id")
    assert event.before is None and event.after == {"enabled": True} and event.actor_user == owner


def test_clearing_the_platform_override_keeps_the_owners_choice(initech):
    tenant, flag, owner = initech
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=30, actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    flag_clear_override(tenant=tenant, flag=flag, actor=None)
    row = explained(tenant, "new_editor")
    assert row.enabled is False and row.reason == "owner_toggle"


def test_an_admin_can_see_and_reset_the_owners_choice(initech):
    tenant, flag, owner = initech
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=30, actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    staff = make_user("platform", is_staff=True)
    assert flag_owner_reset(tenant=tenant, flag=flag, actor=staff) is True
    assert not OwnerToggle.objects.exists()
    row = explained(tenant, "new_editor")
    assert row.reason == "rollout" and row.rollout_percent == 30 and row.owner_enabled is None
    event = AuditEvent.objects.filter(action="flag.owner_reset").latest("id")
    assert event.actor_user == staff and event.before == {"enabled": False}
    assert flag_owner_reset(tenant=tenant, flag=flag, actor=staff) is False


def test_a_flag_no_longer_editable_ignores_the_owners_old_choice(initech):
    from tenants.services.flags import flag_update

    tenant, flag, owner = initech
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, actor=owner)
    flag_update(flag=flag, tenant_editable=False, actor=None)
    row = explained(tenant, "new_editor")
    assert row.enabled is False and row.reason == "default"


def test_the_admin_shows_owner_toggles_and_resets_them(initech, client):
    from django.contrib.auth import get_user_model

    tenant, flag, owner = initech
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    get_user_model().objects.create_superuser("root", password="pw-123456789")
    client.login(username="root", password="pw-123456789")
    page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert "<code>new_editor</code> off by initech-owner" in page
    response = client.post(
        "/admin/tenants/tenant/", {"action": "reset_owner_toggles", "_selected_action": [tenant.pk], "reason": ""}
    )
    assert response.status_code == 302
    assert not OwnerToggle.objects.exists()
    assert AuditEvent.objects.filter(action="flag.owner_reset", actor_user__username="root").count() == 1


def test_migration_moves_owner_rows_out_of_the_override_table(migrate):
    old = migrate([("tenants", "0006_auditevent_moves_to_audit"), ("audit", "0001_initial")])
    Plan, Tenant, Flag = (old.get_model("tenants", name) for name in ("Plan", "Tenant", "Flag"))
    TenantFlag = old.get_model("tenants", "TenantFlag")
    plan = Plan.objects.create(code="std", name="Std")
    tenant = Tenant.objects.create(slug="acme", name="Acme", plan=plan)
    editable = Flag.objects.create(key="tools", tenant_editable=True)
    locked = Flag.objects.create(key="beta")
    TenantFlag.objects.create(tenant=tenant, flag=editable, enabled=False, source="owner")
    TenantFlag.objects.create(tenant=tenant, flag=locked, enabled=True, rollout_percent=30, source="admin")

    migrate()

    assert list(OwnerToggle.objects.values_list("flag__key", "enabled")) == [("tools", False)]
    assert list(TenantFlag.objects.values_list("flag__key", "rollout_percent", "source")) == [("beta", 30, "admin")]
