"""Writes for tenants: lifecycle, configuration and encrypted upstream credentials."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from audit.services import audit_record, audit_snapshot
from tenants import crypto
from tenants.cache import versions_bump
from tenants.exceptions import TenantsError
from tenants.models import Plan, Tenant
from tenants.settings_schema import settings_validate

TENANT_FIELDS = [
    "slug",
    "name",
    "status",
    "status_reason",
    "plan",
    "settings",
    "labels",
    "upstream_url",
    "cache_version",
]
EDITABLE_FIELDS = {"name", "plan", "settings", "labels", "upstream_url"}
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,39}$"
MAX_LABELS = 20


def labels_validate(labels: Any) -> list[str]:
    """Return cleaned tenant labels (sorted, unique); raise TenantsError naming the first bad one."""
    if labels in (None, ""):
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise TenantsError('labels is a list of strings, e.g. ["eu", "beta"].', field="labels")
    cleaned = sorted({label.strip().lower() for label in labels})
    bad = [label for label in cleaned if not re.match(LABEL_PATTERN, label)]
    if bad:
        raise TenantsError(
            f"label {bad[0]!r}: use 1-40 characters a-z, 0-9, '_', '.', '-', starting with a letter or digit.",
            field="labels",
        )
    if len(cleaned) > MAX_LABELS:
        raise TenantsError(f"at most {MAX_LABELS} labels.", field="labels")
    return cleaned


def _clean(tenant: Tenant) -> None:
    try:
        tenant.full_clean(exclude=["plan", "upstream_credentials"])
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        raise TenantsError(f"{name}: {' '.join(messages)}", field=name) from None


def _snapshot(tenant: Tenant) -> dict:
    snap = audit_snapshot(tenant, TENANT_FIELDS)
    snap["upstream_credentials"] = "set" if tenant.upstream_credentials else ""
    return snap


def _locked(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _refresh(tenant: Tenant, source: Tenant) -> Tenant:
    # Callers keep their instance: copy the committed state onto it.
    for field in Tenant._meta.concrete_fields:
        setattr(tenant, field.attname, getattr(source, field.attname))
    return tenant


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    plan: Plan,
    actor: Any,
    settings: dict | None = None,
    upstream_url: str = "",
    status: str = Tenant.Status.TRIAL,
    tenant_id: uuid.UUID | None = None,
    labels: list | None = None,
    ip: str | None = None,
) -> Tenant:
    """Create a tenant (settings and labels validated); `tenant_id` keeps an id from elsewhere (flags_import)."""
    if status not in (Tenant.Status.TRIAL, Tenant.Status.ACTIVE):
        raise TenantsError("A new tenant starts as trial or active.", field="status")
    if Tenant.objects.filter(slug=slug).exists():
        raise TenantsError(f"A tenant with slug {slug!r} already exists.", field="slug")
    if tenant_id is not None and Tenant.objects.filter(pk=tenant_id).exists():
        raise TenantsError(f"A tenant with id {tenant_id} already exists.", field="tenant_id")
    tenant = Tenant(
        id=tenant_id or uuid.uuid4(),
        slug=slug,
        name=name,
        plan=plan,
        settings=settings_validate(settings),
        labels=labels_validate(labels),
        upstream_url=upstream_url,
        status=status,
        status_changed_at=timezone.now(),
    )
    _clean(tenant)
    tenant.save()
    audit_record(
        actor=actor, action=AuditAction.TENANT_CREATE, tenant=tenant, obj=tenant, after=_snapshot(tenant), ip=ip
    )
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, actor: Any, ip: str | None = None, **fields: Any) -> Tenant:
    """Change a tenant's name, plan, settings, labels or upstream URL."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TenantsError(
            f"tenant_update cannot change {', '.join(sorted(unknown))}: use tenant_suspend/tenant_resume "
            "for status and tenant_set_upstream_credentials for credentials."
        )
    locked = _locked(tenant)
    before = _snapshot(locked)
    if "settings" in fields:
        fields["settings"] = settings_validate(fields["settings"])
    if "labels" in fields:
        fields["labels"] = labels_validate(fields["labels"])
    for name, value in fields.items():
        setattr(locked, name, value)
    _clean(locked)
    locked.save()
    changed = _snapshot(locked) != before
    if changed:
        locked.cache_version = versions_bump([locked.pk])[locked.pk]
    audit_record(
        actor=actor,
        action=AuditAction.TENANT_UPDATE,
        tenant=locked,
        obj=locked,
        before=before,
        after=_snapshot(locked),
        ip=ip,
    )
    return _refresh(tenant, locked)


def _set_status(
    *,
    tenant: Tenant,
    status: str,
    reason: str,
    action: str,
    actor: Any,
    ip: str | None,
    erase_credentials: bool = False,
) -> Tenant:
    locked = _locked(tenant)
    before = _snapshot(locked)
    locked.status = status
    locked.status_reason = reason[:500]
    locked.status_changed_at = timezone.now()
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if erase_credentials:
        locked.upstream_credentials = ""
        fields.append("upstream_credentials")
    locked.save(update_fields=fields)
    # The version bump is what stops cached API-key entries from serving the tenant.
    locked.cache_version = versions_bump([locked.pk])[locked.pk]
    audit_record(
        actor=actor,
        action=action,
        tenant=locked,
        obj=locked,
        before=before,
        after=_snapshot(locked),
        reason=reason,
        ip=ip,
    )
    return _refresh(tenant, locked)


def _refuse_offboarded(tenant: Tenant, verb: str, status: str) -> None:
    if status == Tenant.Status.DELETED:
        raise TenantsError(f"{tenant.slug} was offboarded: a deleted tenant cannot be {verb}.", field="status")


@transaction.atomic
def tenant_activate(*, tenant: Tenant, actor: Any, ip: str | None = None) -> Tenant:
    """Turn a trial tenant into an active one."""
    status = _locked(tenant).status
    _refuse_offboarded(tenant, "activated", status)
    if status == Tenant.Status.SUSPENDED:
        raise TenantsError(f"{tenant.slug} is suspended: resume it first.", field="status")
    if status != Tenant.Status.TRIAL:
        raise TenantsError(f"{tenant.slug} is {status}: only a trial tenant can be activated.", field="status")
    return _set_status(
        tenant=tenant, status=Tenant.Status.ACTIVE, reason="", action=AuditAction.TENANT_ACTIVATE, actor=actor, ip=ip
    )


@transaction.atomic
def tenant_suspend(*, tenant: Tenant, reason: str, actor: Any, ip: str | None = None) -> Tenant:
    """Suspend a tenant: its API keys get 403 from the next request after commit."""
    if not reason.strip():
        raise TenantsError("Give a reason for the suspension.", field="reason")
    _refuse_offboarded(tenant, "suspended", _locked(tenant).status)
    return _set_status(
        tenant=tenant,
        status=Tenant.Status.SUSPENDED,
        reason=reason,
        action=AuditAction.TENANT_SUSPEND,
        actor=actor,
        ip=ip,
    )


def _status_before_suspension(tenant: Tenant) -> str:
    # The audit trail remembers what the suspension interrupted; a second suspension's
    # "before" is already suspended, so take the latest one that left a serving state.
    serving = (Tenant.Status.TRIAL, Tenant.Status.ACTIVE)
    for before in (
        AuditEvent.objects.filter(tenant=tenant, action=AuditAction.TENANT_SUSPEND)
        .order_by("-created_at", "-id")
        .values_list("before", flat=True)
    ):
        status = (before or {}).get("status")
        if status in serving:
            return status
    return Tenant.Status.ACTIVE


@transaction.atomic
def tenant_resume(*, tenant: Tenant, actor: Any, ip: str | None = None) -> Tenant:
    """Lift a suspension: the tenant returns to the state it was suspended from (a trial stays a trial)."""
    status = _locked(tenant).status
    _refuse_offboarded(tenant, "resumed", status)
    if status != Tenant.Status.SUSPENDED:
        raise TenantsError(f"{tenant.slug} is {status}, not suspended: nothing to resume.", field="status")
    return _set_status(
        tenant=tenant,
        status=_status_before_suspension(tenant),
        reason="",
        action=AuditAction.TENANT_RESUME,
        actor=actor,
        ip=ip,
    )


@transaction.atomic
def tenant_offboard(*, tenant: Tenant, reason: str, actor: Any, ip: str | None = None) -> Tenant:
    """Offboard a tenant for good: status deleted, API access refused, upstream credentials erased.

    The tenant row, its memberships, keys, usage and audit events are kept (docs/tenants.md, "Offboarding").
    """
    if not reason.strip():
        raise TenantsError("Give a reason for offboarding.", field="reason")
    _refuse_offboarded(tenant, "offboarded again", _locked(tenant).status)
    return _set_status(
        tenant=tenant,
        status=Tenant.Status.DELETED,
        reason=reason,
        action=AuditAction.TENANT_OFFBOARD,
        actor=actor,
        ip=ip,
        erase_credentials=True,
    )


@transaction.atomic
def tenant_set_upstream_credentials(*, tenant: Tenant, secret: str, actor: Any, ip: str | None = None) -> Tenant:
    """Store the tenant's upstream credentials encrypted; an empty secret clears them."""
    locked = _locked(tenant)
    before = _snapshot(locked)
    locked.upstream_credentials = crypto.encrypt(secret) if secret else ""
    locked.save(update_fields=["upstream_credentials", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.TENANT_SET_UPSTREAM_CREDENTIALS,
        tenant=locked,
        obj=locked,
        before=before,
        after=_snapshot(locked),
        ip=ip,
    )
    return _refresh(tenant, locked)


@transaction.atomic
def tenant_reencrypt_credentials(*, tenant: Tenant, actor: Any, ip: str | None = None) -> bool:
    """Re-seal the tenant's credentials with the current key; return True if they needed it."""
    locked = _locked(tenant)
    if not locked.upstream_credentials or not crypto.needs_rotation(locked.upstream_credentials):
        return False
    locked.upstream_credentials = crypto.encrypt(crypto.decrypt(locked.upstream_credentials))
    locked.save(update_fields=["upstream_credentials", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.TENANT_REENCRYPT_CREDENTIALS,
        tenant=locked,
        obj=locked,
        after={"key_id": crypto.current_key_id()},
        ip=ip,
    )
    _refresh(tenant, locked)
    return True
