"""Writes for flag definitions and per-tenant overrides."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from tenants.cache import versions_bump
from tenants.exceptions import FlagNotEditable, PermissionDenied, TenantsError
from tenants.models import FLAG_KEY_PATTERN, Flag, Membership, OwnerToggle, Tenant, TenantFlag

FLAG_FIELDS = ["key", "description", "default", "tenant_editable", "risky", "archived"]
UPDATABLE_FLAG_FIELDS = {"description", "default", "tenant_editable", "risky", "archived"}
OVERRIDE_FIELDS = ["enabled", "rollout_percent", "source"]


def _all_tenants() -> list:
    return list(Tenant.objects.values_list("pk", flat=True))


@transaction.atomic
def flag_create(
    *,
    key: str,
    description: str,
    default: bool,
    tenant_editable: bool,
    actor: Any,
    risky: bool = False,
    ip: str | None = None,
) -> Flag:
    """Define a flag; every tenant's evaluation is re-stamped."""
    if not re.match(FLAG_KEY_PATTERN, key or ""):
        raise TenantsError("key: use 1-64 characters: a-z, 0-9, '_', '.', '-'.", field="key")
    if Flag.objects.filter(key=key).exists():
        raise TenantsError(f"A flag with key {key!r} already exists.", field="key")
    flag = Flag.objects.create(
        key=key, description=description, default=default, tenant_editable=tenant_editable, risky=risky
    )
    versions_bump(_all_tenants())
    audit_record(actor=actor, action=AuditAction.FLAG_CREATE, obj=flag, after=audit_snapshot(flag, FLAG_FIELDS), ip=ip)
    return flag


@transaction.atomic
def flag_update(*, flag: Flag, actor: Any, ip: str | None = None, **fields: Any) -> Flag:
    """Change a flag definition (description, default, editability, risk, archived)."""
    unknown = set(fields) - UPDATABLE_FLAG_FIELDS
    if unknown:
        raise TenantsError(f"flag_update cannot change {', '.join(sorted(unknown))}; a key is permanent.")
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    before = audit_snapshot(locked, FLAG_FIELDS)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    after = audit_snapshot(locked, FLAG_FIELDS)
    if after != before:
        versions_bump(_all_tenants())
    audit_record(actor=actor, action=AuditAction.FLAG_UPDATE, obj=locked, before=before, after=after, ip=ip)
    for name in fields:
        setattr(flag, name, getattr(locked, name))
    return flag


def _override_snapshot(override: TenantFlag | None) -> dict | None:
    return None if override is None else audit_snapshot(override, OVERRIDE_FIELDS)


def _save_override(
    *, tenant: Tenant, flag: Flag, enabled: bool, rollout_percent: int, source: str, actor: Any, action: str, ip
) -> TenantFlag:
    if not isinstance(rollout_percent, int) or not 0 <= rollout_percent <= 100:
        raise TenantsError("rollout_percent must be a whole number from 0 to 100.", field="rollout_percent")
    if source not in TenantFlag.Source.values:
        raise TenantsError(f"source must be one of {', '.join(TenantFlag.Source.values)}.", field="source")
    override = TenantFlag.objects.select_for_update().filter(tenant=tenant, flag=flag).first()
    before = _override_snapshot(override)
    if override is None:
        override = TenantFlag(tenant=tenant, flag=flag)
    override.enabled = bool(enabled)
    override.rollout_percent = rollout_percent
    override.source = source
    override.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    override.save()
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=action,
        tenant=tenant,
        obj=override,
        object_type="tenants.tenantflag",
        object_id=flag.key,
        before=before,
        after=_override_snapshot(override),
        ip=ip,
    )
    return override


@transaction.atomic
def flag_set_override(
    *,
    tenant: Tenant,
    flag: Flag,
    enabled: bool,
    actor: Any,
    rollout_percent: int = 100,
    source: str = TenantFlag.Source.ADMIN,
    ip: str | None = None,
) -> TenantFlag:
    """Set a tenant's override of a flag (platform admin)."""
    return _save_override(
        tenant=tenant,
        flag=flag,
        enabled=enabled,
        rollout_percent=rollout_percent,
        source=source,
        actor=actor,
        action=AuditAction.FLAG_SET_OVERRIDE,
        ip=ip,
    )


@transaction.atomic
def flag_clear_override(*, tenant: Tenant, flag: Flag, actor: Any, ip: str | None = None) -> bool:
    """Remove a tenant's override so the plan or flag default applies; return True if one existed."""
    override = TenantFlag.objects.select_for_update().filter(tenant=tenant, flag=flag).first()
    if override is None:
        return False
    before = _override_snapshot(override)
    override.delete()
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=AuditAction.FLAG_CLEAR_OVERRIDE,
        tenant=tenant,
        object_type="tenants.tenantflag",
        object_id=flag.key,
        before=before,
        ip=ip,
    )
    return True


def _owner_snapshot(toggle: OwnerToggle | None) -> dict | None:
    return None if toggle is None else {"enabled": toggle.enabled}


def _save_owner_toggle(*, tenant: Tenant, flag: Flag, enabled: bool, actor: Any, ip, reason: str = "") -> OwnerToggle:
    toggle = OwnerToggle.objects.select_for_update().filter(tenant=tenant, flag=flag).first()
    before = _owner_snapshot(toggle)
    toggle = toggle or OwnerToggle(tenant=tenant, flag=flag)
    toggle.enabled = bool(enabled)
    toggle.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    toggle.save()
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=AuditAction.FLAG_OWNER_TOGGLE,
        tenant=tenant,
        obj=toggle,
        object_type="tenants.ownertoggle",
        object_id=flag.key,
        before=before,
        after=_owner_snapshot(toggle),
        reason=reason,
        ip=ip,
    )
    return toggle


@transaction.atomic
def flag_owner_toggle(*, tenant: Tenant, flag: Flag, enabled: bool, actor: Any, ip: str | None = None) -> OwnerToggle:
    """Record a tenant owner's or admin's choice for a tenant-editable flag, within the platform's override.

    The platform's override (if any) is left as it is: "off" turns the flag off for the tenant,
    "on" gives back what the platform set (its rollout percentage), never more.
    """
    actor_pk = getattr(actor, "pk", None)
    role = (
        None  # no membership has a null user
        if actor_pk is None
        else Membership.objects.filter(tenant=tenant, user_id=actor_pk).values_list("role", flat=True).first()
    )
    if role not in (Membership.Role.OWNER, Membership.Role.ADMIN):
        raise PermissionDenied("Only an owner or admin of this tenant can toggle its flags.")
    if not flag.tenant_editable or flag.archived:
        raise FlagNotEditable()
    override = TenantFlag.objects.filter(tenant=tenant, flag=flag).first()
    if enabled and override is not None and not override.enabled:
        raise TenantsError(
            f"The platform team has turned “{flag.key}” off for this tenant; an owner toggle cannot turn it on. "
            "Ask the platform team.",
            field="enabled",
        )
    return _save_owner_toggle(tenant=tenant, flag=flag, enabled=enabled, actor=actor, ip=ip)


@transaction.atomic
def owner_toggle_restore(
    *, tenant: Tenant, flag: Flag, enabled: bool, actor: Any, ip: str | None = None
) -> OwnerToggle:
    """Set a tenant owner's choice on the owners' behalf (flags_import restoring an export); audited as the actor."""
    if not flag.tenant_editable:
        raise FlagNotEditable(f"“{flag.key}” is not editable by tenant owners: an owner toggle cannot be restored.")
    return _save_owner_toggle(
        tenant=tenant, flag=flag, enabled=enabled, actor=actor, ip=ip, reason="restored on the owners' behalf"
    )


@transaction.atomic
def flag_owner_reset(*, tenant: Tenant, flag: Flag, actor: Any, ip: str | None = None) -> bool:
    """Remove the tenant owner's choice for a flag (platform admin); return True if there was one."""
    toggle = OwnerToggle.objects.select_for_update().filter(tenant=tenant, flag=flag).first()
    if toggle is None:
        return False
    before = _owner_snapshot(toggle)
    toggle.delete()
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=AuditAction.FLAG_OWNER_RESET,
        tenant=tenant,
        object_type="tenants.ownertoggle",
        object_id=flag.key,
        before=before,
        ip=ip,
    )
    return True
