"""Writes for memberships; every tenant keeps at least one owner."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from tenants.exceptions import LastOwnerError, TenantsError
from tenants.models import Membership, Tenant

ROLES = set(Membership.Role.values)


def _snapshot(membership: Membership) -> dict:
    return {"user": membership.user.get_username(), "user_id": membership.user_id, "role": membership.role}


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise TenantsError(f"role must be one of {', '.join(sorted(ROLES))}.", field="role")


def _ensure_other_owner(membership: Membership) -> None:
    # Lock the tenant's owner rows so two concurrent demotions cannot both pass the check.
    owners = list(
        Membership.objects.select_for_update()
        .filter(tenant_id=membership.tenant_id, role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )
    if owners == [membership.pk]:
        raise LastOwnerError()


@transaction.atomic
def membership_add(*, tenant: Tenant, user: Any, role: str, actor: Any, ip: str | None = None) -> Membership:
    """Give a user a role in a tenant."""
    _check_role(role)
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise TenantsError(f"{user.get_username()} is already a member of {tenant.slug}.", field="user")
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_ADD,
        tenant=tenant,
        obj=membership,
        after=_snapshot(membership),
        ip=ip,
    )
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: Any, ip: str | None = None) -> Membership:
    """Change a member's role; the last owner cannot be demoted."""
    _check_role(role)
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    before = _snapshot(locked)
    if locked.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        _ensure_other_owner(locked)
    locked.role = role
    locked.save(update_fields=["role"])
    membership.role = role
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_CHANGE_ROLE,
        tenant=locked.tenant,
        obj=locked,
        before=before,
        after=_snapshot(locked),
        ip=ip,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Any, ip: str | None = None) -> None:
    """Remove a member; the last owner cannot be removed."""
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    if locked.role == Membership.Role.OWNER:
        _ensure_other_owner(locked)
    before = _snapshot(locked)
    pk = locked.pk
    locked.delete()
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_REMOVE,
        tenant=locked.tenant,
        object_type="tenants.membership",
        object_id=str(pk),
        before=before,
        ip=ip,
    )
