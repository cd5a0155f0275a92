"""Every service writes its change and an audit row with before/after in one transaction."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tenants import crypto
from tenants.exceptions import FlagNotEditable, InvalidSettings, LastOwnerError, PermissionDenied, TenantsError
from tenants.models import ApiKey, Membership, OwnerToggle, Tenant, TenantFlag
from tenants.services.apikeys import KEY_PATTERN, apikey_hash, apikey_issue, apikey_revoke
from tenants.services.flags import flag_clear_override, flag_owner_toggle, flag_set_override, flag_update
from tenants.services.memberships import membership_add, membership_change_role, membership_remove
from tenants.services.plans import plan_update
from tenants.services.tenants import (
    tenant_mark_deleted,
    tenant_reencrypt_credentials,
    tenant_resume,
    tenant_set_upstream_credentials,
    tenant_suspend,
    tenant_update,
)

from .factories import make_flag, make_plan, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db


def last_event(action):
    return AuditEvent.objects.filter(action=action).latest("id")


def test_create_services_audit_after_state():
    staff = make_staff()
    plan = make_plan("gold", rate_limit_per_minute=100)
    tenant = make_tenant("acme", plan=plan, settings={"max_concurrent_agents": 3})
    flag = make_flag("beta")
    assert last_event("plan.create").after["rate_limit_per_minute"] == 100
    assert last_event("tenant.create").after["settings"] == {"max_concurrent_agents": 3}
    assert last_event("flag.create").after["key"] == "beta"
    membership_add(tenant=tenant, user=staff, role="owner", actor=staff)
    event = last_event("membership.add")
    assert event.actor_label == "staff" and event.tenant == tenant and event.after["role"] == "owner"
    assert flag.key == "beta"


def test_tenant_update_records_before_and_after_and_bumps_version():
    staff = make_staff()
    tenant = make_tenant("acme")
    version = tenant.cache_version
    tenant_update(tenant=tenant, actor=staff, name="Acme Corp", settings={"agent_type": "goose"})
    event = last_event("tenant.update")
    assert event.before["name"] == "Acme" and event.after["name"] == "Acme Corp"
    assert event.after["settings"] == {"agent_type": "goose"}
    assert tenant.name == "Acme Corp" and tenant.cache_version == version + 1


def test_tenant_update_rejects_bad_settings_naming_the_field():
    tenant = make_tenant("acme")
    with pytest.raises(InvalidSettings, match=r"settings\.max_concurrent_agents") as exc:
        tenant_update(tenant=tenant, actor=None, settings={"max_concurrent_agents": 0})
    assert exc.value.field == "settings.max_concurrent_agents"
    with pytest.raises(InvalidSettings, match=r"settings\.colour"):
        tenant_update(tenant=tenant, actor=None, settings={"colour": "red"})
    with pytest.raises(TenantsError, match="status"):
        tenant_update(tenant=tenant, actor=None, status="active")
    assert not AuditEvent.objects.filter(action="tenant.update").exists()


def test_suspend_and_resume_are_audited_with_reason():
    staff = make_staff()
    tenant = make_tenant("acme")
    with pytest.raises(TenantsError, match="reason"):
        tenant_suspend(tenant=tenant, reason=" ", actor=staff)
    tenant_suspend(tenant=tenant, reason="unpaid invoice", actor=staff, ip="10.0.0.1")
    event = last_event("tenant.suspend")
    assert (event.before["status"], event.after["status"]) == ("trial", "suspended")
    assert event.reason == "unpaid invoice" and event.ip == "10.0.0.1"
    assert Tenant.objects.get().status == "suspended" and tenant.status == "suspended"
    tenant_resume(tenant=tenant, actor=staff)
    assert last_event("tenant.resume").after["status"] == "active"
    tenant_mark_deleted(tenant=tenant, reason="closed", actor=staff)
    assert last_event("tenant.delete").after["status"] == "deleted"
    with pytest.raises(TenantsError):
        tenant_resume(tenant=tenant, actor=staff)


def test_upstream_credentials_are_encrypted_and_never_audited_in_clear(settings):
    tenant = make_tenant("acme")
    tenant_set_upstream_credentials(tenant=tenant, secret="tok-123", actor=None)
    stored = Tenant.objects.get().upstream_credentials
    assert stored.startswith("v1.") and crypto.decrypt(stored) == "tok-123"
    event = last_event("tenant.set_upstream_credentials")
    assert event.before["upstream_credentials"] == "" and event.after["upstream_credentials"] == "set"
    assert "tok-123" not in str(event.before) + str(event.after)
    old_key = settings.TENANTS_TOKEN_ENCRYPTION_KEY
    settings.TENANTS_TOKEN_ENCRYPTION_KEY = bytes.fromhex("33" * 32)
    settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = [old_key]
    assert tenant_reencrypt_credentials(tenant=tenant, actor=None) is True
    assert not crypto.needs_rotation(Tenant.objects.get().upstream_credentials)
    assert tenant_reencrypt_credentials(tenant=tenant, actor=None) is False
    assert last_event("tenant.reencrypt_credentials")


def test_last_owner_cannot_be_demoted_or_removed():
    owner, other = make_user("owner"), make_user("other")
    tenant = make_tenant("acme", owner=owner)
    owner_membership = Membership.objects.get(user=owner)
    with pytest.raises(LastOwnerError):
        membership_change_role(membership=owner_membership, role="member", actor=owner)
    with pytest.raises(LastOwnerError):
        membership_remove(membership=owner_membership, actor=owner)
    second = membership_add(tenant=tenant, user=other, role="admin", actor=owner)
    membership_change_role(membership=second, role="owner", actor=owner)
    assert last_event("membership.change_role").before["role"] == "admin"
    membership_remove(membership=owner_membership, actor=other)
    assert last_event("membership.remove").before["user"] == "owner"
    assert list(Membership.objects.values_list("user__username", "role")) == [("other", "owner")]
    with pytest.raises(TenantsError, match="role"):
        membership_add(tenant=tenant, user=owner, role="king", actor=other)
    with pytest.raises(TenantsError, match="already"):
        membership_add(tenant=tenant, user=other, role="member", actor=other)


def test_overrides_are_audited_and_clearable():
    staff = make_staff()
    tenant, flag = make_tenant("acme"), make_flag("beta")
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=30, actor=staff)
    event = last_event("flag.set_override")
    assert event.before is None and event.after == {"enabled": True, "rollout_percent": 30, "source": "admin"}
    flag_set_override(tenant=tenant, flag=flag, enabled=False, actor=staff)
    assert last_event("flag.set_override").before["rollout_percent"] == 30
    with pytest.raises(TenantsError, match="rollout_percent"):
        flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=101, actor=staff)
    assert flag_clear_override(tenant=tenant, flag=flag, actor=staff) is True
    assert last_event("flag.clear_override").before["enabled"] is False
    assert flag_clear_override(tenant=tenant, flag=flag, actor=staff) is False
    flag_update(flag=flag, actor=staff, default=True, archived=True)
    event = last_event("flag.update")
    assert event.before["default"] is False and event.after["archived"] is True


def test_owner_toggle_rules():
    owner, member, stranger = make_user("owner"), make_user("member"), make_user("stranger")
    tenant = make_tenant("acme", owner=owner)
    membership_add(tenant=tenant, user=member, role="member", actor=owner)
    editable, locked = make_flag("dark_mode", tenant_editable=True), make_flag("billing_v2", tenant_editable=False)
    flag_owner_toggle(tenant=tenant, flag=editable, enabled=True, actor=owner)
    toggle = OwnerToggle.objects.get()
    assert toggle.enabled and toggle.updated_by == owner and not TenantFlag.objects.exists()
    assert last_event("flag.owner_toggle").actor_label == "owner"
    with pytest.raises(FlagNotEditable):
        flag_owner_toggle(tenant=tenant, flag=locked, enabled=True, actor=owner)
    for user in (member, stranger):
        with pytest.raises(PermissionDenied):
            flag_owner_toggle(tenant=tenant, flag=editable, enabled=False, actor=user)


def test_apikey_issue_and_revoke():
    staff = make_staff()
    tenant = make_tenant("acme")
    api_key, secret = apikey_issue(tenant=tenant, name="replica", scopes=None, actor=staff)
    assert KEY_PATTERN.match(secret) and secret.split("_")[1] == api_key.prefix
    stored = ApiKey.objects.get()
    assert stored.secret_hash == apikey_hash(secret) and secret not in str(stored.__dict__)
    event = last_event("apikey.issue")
    assert event.after["prefix"] == api_key.prefix and secret not in str(event.after)
    apikey_revoke(api_key=api_key, actor=staff)
    assert ApiKey.objects.get().revoked_at is not None
    assert last_event("apikey.revoke").before["revoked_at"] is None
    with pytest.raises(TenantsError, match="scopes"):
        apikey_issue(tenant=tenant, name="x", scopes=["admin:all"], actor=staff)
    with pytest.raises(TenantsError, match="expires_at"):
        apikey_issue(tenant=tenant, name="x", scopes=None, actor=staff, expires_at=timezone.now() - timedelta(1))
    with pytest.raises(TenantsError, match="name"):
        apikey_issue(tenant=tenant, name=" ", scopes=None, actor=staff)


def test_plan_update_bumps_its_tenants_only():
    gold, free = make_plan("gold"), make_plan("free")
    acme, globex = make_tenant("acme", plan=gold), make_tenant("globex", plan=free)
    versions = {t.slug: t.cache_version for t in (acme, globex)}
    flag = make_flag("beta")  # a new flag re-stamps everyone
    plan_update(plan=gold, actor=None, burst=5, default_flags={"beta": True})
    after = dict(Tenant.objects.values_list("slug", "cache_version"))
    assert after == {"acme": versions["acme"] + 2, "globex": versions["globex"] + 1}
    assert last_event("plan.update").after["default_flags"] == {flag.key: True}
    with pytest.raises(TenantsError, match="unknown flags"):
        plan_update(plan=gold, actor=None, default_flags={"nope": True})


def test_settings_labels_refuse_control_characters():
    # PostgreSQL's jsonb refuses NUL: the schema must, so the write fails as a form error, not a 500.
    tenant = make_tenant("acme")
    with pytest.raises(InvalidSettings, match=r"settings\.labels\.env: .*control characters"):
        tenant_update(tenant=tenant, actor=None, settings={"labels": {"env": "pr\x00d"}})
    tenant_update(tenant=tenant, actor=None, settings={"labels": {"env": "prod"}})
    tenant.refresh_from_db()
    assert tenant.settings["labels"] == {"env": "prod"}
