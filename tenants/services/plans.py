"""Writes for plans; a change re-stamps every tenant on the plan."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from tenants.cache import versions_bump
from tenants.exceptions import TenantsError
from tenants.models import Flag, Plan

PLAN_FIELDS = ["code", "name", "rate_limit_per_minute", "burst", "daily_quota", "max_environments", "default_flags"]


def _validate_default_flags(value: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
        raise TenantsError(
            'default_flags must map flag keys to true/false, e.g. {"beta": true}.', field="default_flags"
        )
    unknown = sorted(set(value) - set(Flag.objects.filter(key__in=list(value)).values_list("key", flat=True)))
    if unknown:
        raise TenantsError(f"default_flags names unknown flags: {', '.join(unknown)}.", field="default_flags")
    return value


@transaction.atomic
def plan_create(
    *,
    code: str,
    name: str,
    actor: Any,
    rate_limit_per_minute: int | None = None,
    burst: int | None = None,
    daily_quota: int | None = None,
    default_flags: dict | None = None,
    max_environments: int = 3,
    ip: str | None = None,
) -> Plan:
    """Create a plan; empty limits inherit the RATE_LIMIT_* defaults."""
    if Plan.objects.filter(code=code).exists():
        raise TenantsError(f"A plan with code {code!r} already exists.", field="code")
    plan = Plan(
        code=code,
        name=name,
        rate_limit_per_minute=rate_limit_per_minute,
        burst=burst,
        daily_quota=daily_quota,
        max_environments=max_environments,
        default_flags=_validate_default_flags(default_flags or {}),
    )
    plan.full_clean()
    plan.save()
    audit_record(actor=actor, action=AuditAction.PLAN_CREATE, obj=plan, after=audit_snapshot(plan, PLAN_FIELDS), ip=ip)
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, actor: Any, ip: str | None = None, **fields: Any) -> Plan:
    """Change a plan's fields and invalidate its tenants' cached evaluation."""
    unknown = set(fields) - set(PLAN_FIELDS)
    if unknown:
        raise TenantsError(f"Unknown plan fields: {', '.join(sorted(unknown))}.")
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    before = audit_snapshot(plan, PLAN_FIELDS)
    if "default_flags" in fields:
        fields["default_flags"] = _validate_default_flags(fields["default_flags"] or {})
    for name, value in fields.items():
        setattr(plan, name, value)
    plan.full_clean()
    plan.save()
    after = audit_snapshot(plan, PLAN_FIELDS)
    if after != before:
        versions_bump(plan.tenants.values_list("pk", flat=True))
    audit_record(actor=actor, action=AuditAction.PLAN_UPDATE, obj=plan, before=before, after=after, ip=ip)
    return plan
