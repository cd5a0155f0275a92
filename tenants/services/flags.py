"""Writes for flag definitions and per-tenant overrides."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from tenants import flagrules
from tenants.cache import versions_bump
from tenants.exceptions import ApprovalRequired, FlagNotEditable, PermissionDenied, TenantsError
from tenants.models import FLAG_KEY_PATTERN, PRODUCTION, Flag, Membership, OwnerToggle, Segment, Tenant, TenantFlag
from tenants.services.environments import environment_require

FLAG_FIELDS = [
    "key",
    "description",
    "kind",
    "default",
    "default_value",
    "variants",
    "rules",
    "schema",
    "requires_approval",
    "tenant_editable",
    "risky",
    "archived",
]
# A key and a kind are permanent: clients read the flag by key and parse its value by kind.
UPDATABLE_FLAG_FIELDS = set(FLAG_FIELDS) - {"key", "kind"}
OVERRIDE_FIELDS = ["environment", "enabled", "rollout_percent", "variant", "value", "owner_variants", "source"]
SEGMENT_FIELDS = ["key", "name", "description", "conditions"]


# Left out of audit snapshots while at their empty default, so a boolean flag's record reads as it always did.
_QUIET_WHEN_EMPTY: dict[str, object] = {
    "kind": Flag.Kind.BOOLEAN,
    "default_value": None,
    "variants": [],
    "rules": [],
    "schema": None,
    "requires_approval": False,
    "variant": "",
    "value": None,
    "owner_variants": [],
    "environment": PRODUCTION,
}


def _snapshot(obj: Any, fields: list[str]) -> dict:
    snap = audit_snapshot(obj, fields)
    return {
        name: value
        for name, value in snap.items()
        if not (name in _QUIET_WHEN_EMPTY and value == _QUIET_WHEN_EMPTY[name])
    }


def _refuse_unapproved(flag: Flag, *, approved: bool, operation: str, params: dict) -> None:
    """Raise ApprovalRequired if `flag` requires approval and the caller is not applying an approved change.

    Only the change-request workflow passes approved=True; everyone else's write to such a flag is
    refused with what a change request needs (the operation and its natural-key params).
    """
    if flag.requires_approval and not approved:
        raise ApprovalRequired(
            f"“{flag.key}” requires approval: a change to it is a change request that another staff user "
            "approves before it applies.",
            operation=operation,
            params=params,
        )


def _all_tenants() -> list:
    return list(Tenant.objects.values_list("pk", flat=True))


def _layer_removed(tenant: Tenant) -> None:
    """Record that a layer of the tenant's flags went away: entry versions are the newest change among
    their layers (tenants.selectors), and a removed row leaves no time of its own to count."""
    Tenant.objects.filter(pk=tenant.pk).update(updated_at=timezone.now())


def _rule_error(exc: flagrules.RuleError) -> TenantsError:
    return TenantsError(f"{exc.field}: {exc.message}", field=exc.field)


def _clean_definition(flag: Flag) -> None:
    """Validate a flag's kind, values, variants, schema and rules together; normalise them in place.

    Raises TenantsError naming the field (e.g. "variants[1].weight", "rules[0].serve.variant").
    Overrides that would stop fitting the definition (a removed variant, a value the schema
    now refuses) are refused too, naming the tenant.
    """
    try:
        if flag.kind not in flagrules.KINDS:
            raise flagrules.RuleError(f"kind must be one of {', '.join(flagrules.KINDS)}.", field="kind")
        flag.schema = flagrules.validate_schema(flag.schema) if flag.kind == Flag.Kind.JSON else None
        if flag.kind == Flag.Kind.BOOLEAN:
            if flag.default_value not in (None, True, False):
                raise flagrules.RuleError("a boolean flag has no default value: set `default`.", field="default_value")
            flag.default_value = None
        else:
            if flag.default_value is None:
                raise flagrules.RuleError(f"a {flag.kind} flag needs a default value.", field="default_value")
            flagrules.validate_value(flag.kind, flag.default_value, field="default_value", schema=flag.schema)
        flag.variants = flagrules.validate_variants(flag.kind, flag.variants, schema=flag.schema)
        # The segments the rules name are locked until commit: segment_delete, which checks for users
        # under the same lock, cannot remove one between this check and the flag's save.
        rules = flag.rules if isinstance(flag.rules, list) else []
        named = [r["segment"] for r in rules if isinstance(r, dict) and isinstance(r.get("segment"), str)]
        segment_keys = set(Segment.objects.select_for_update().filter(key__in=named).values_list("key", flat=True))
        flag.rules = flagrules.validate_rules(
            flag.rules, kind=flag.kind, variants=flag.variants, schema=flag.schema, segment_keys=segment_keys
        )
    except flagrules.RuleError as exc:
        raise _rule_error(exc) from None
    if flag.pk is None:
        return
    for override in TenantFlag.objects.filter(flag=flag).select_related("tenant"):
        try:
            _clean_override_values(flag, override.variant, override.value, override.owner_variants)
        except TenantsError as exc:
            raise TenantsError(
                f"the override for tenant {override.tenant.slug} would no longer fit ({exc.message}); "
                "change or clear that override first.",
                field=exc.field,
            ) from None


def _clean_override_values(flag: Flag, variant: str, value: Any, owner_variants: Any) -> list[str]:
    """Check what an override serves against the flag's definition; return the cleaned owner_variants."""
    owner_variants = list(owner_variants or [])
    if flag.kind == Flag.Kind.BOOLEAN and (variant or value is not None or owner_variants):
        raise TenantsError(
            "a boolean flag's override is on or off (with a rollout): no variant or value.", field="variant"
        )
    if variant and value is not None:
        raise TenantsError("an override serves a variant or a value, not both.", field="value")
    known = {v["key"] for v in flag.variants}
    if variant and variant not in known:
        raise TenantsError(f"no variant {variant!r} on flag {flag.key}.", field="variant")
    unknown = [v for v in owner_variants if v not in known]
    if unknown:
        raise TenantsError(f"no variant {unknown[0]!r} on flag {flag.key}.", field="owner_variants")
    if value is not None:
        try:
            flagrules.validate_value(flag.kind, value, field="value", schema=flag.schema)
        except flagrules.RuleError as exc:
            raise _rule_error(exc) from None
    return owner_variants


def flag_definition_errors(*, flag: Flag | None = None, **fields: Any) -> list[TenantsError]:
    """Return every problem of a flag definition, one per section, without saving (forms show them at once).

    `flag` is the saved flag being changed (None: a new one); `fields` are its new values. An
    empty list means flag_create/flag_update would accept them, overrides included.
    """
    candidate = Flag(**{name: getattr(flag, name) for name in FLAG_FIELDS}) if flag is not None else Flag()
    candidate.pk = None if flag is None else flag.pk
    for name, value in fields.items():
        setattr(candidate, name, value)
    if candidate.kind not in flagrules.KINDS:
        return [TenantsError(f"kind must be one of {', '.join(flagrules.KINDS)}.", field="kind")]
    errors: list[TenantsError] = []

    def check(section, validate):
        try:
            return validate()
        except flagrules.RuleError as exc:
            errors.append(_rule_error(exc))
        except TenantsError as exc:
            errors.append(exc)
        return section

    schema = None
    if candidate.kind == Flag.Kind.JSON:
        schema = check(None, lambda: flagrules.validate_schema(candidate.schema))
    if candidate.kind != Flag.Kind.BOOLEAN:
        if candidate.default_value is None:
            errors.append(TenantsError(f"a {candidate.kind} flag needs a default value.", field="default_value"))
        else:
            check(
                None,
                lambda: flagrules.validate_value(
                    candidate.kind, candidate.default_value, field="default_value", schema=schema
                ),
            )
    # Rules are checked against the variants as given even when those have their own error, so a rule
    # naming a variant in the list is not reported as naming a missing one.
    given = [v for v in candidate.variants or [] if isinstance(v, dict) and isinstance(v.get("key"), str)]
    variants = check(given, lambda: flagrules.validate_variants(candidate.kind, candidate.variants, schema=schema))
    segment_keys = set(Segment.objects.values_list("key", flat=True))
    check(
        None,
        lambda: flagrules.validate_rules(
            candidate.rules, kind=candidate.kind, variants=variants, schema=schema, segment_keys=segment_keys
        ),
    )
    if not errors:
        # The service's own check, whole: normalising, and the overrides that must still fit.
        check(None, lambda: _clean_definition(candidate))
    return errors


def flag_override_errors(
    *, flag: Flag, variant: str = "", value: Any = None, owner_variants: Any = ()
) -> list[TenantsError]:
    """Return what is wrong with an override's variant, value and owner bounds for the flag (empty: fine)."""
    try:
        _clean_override_values(flag, variant or "", value, owner_variants)
    except TenantsError as exc:
        return [exc]
    return []


@transaction.atomic
def flag_create(
    *,
    key: str,
    description: str,
    default: bool,
    tenant_editable: bool,
    actor: Any,
    risky: bool = False,
    kind: str = Flag.Kind.BOOLEAN,
    default_value: Any = None,
    variants: list | None = None,
    rules: list | None = None,
    schema: dict | None = None,
    requires_approval: bool = False,
    ip: str | None = None,
) -> Flag:
    """Define a flag (boolean unless `kind` says otherwise); every tenant's evaluation is re-stamped."""
    if not re.match(FLAG_KEY_PATTERN, key or ""):
        raise TenantsError("key: use 1-64 characters: a-z, 0-9, '_', '.', '-'.", field="key")
    if Flag.objects.filter(key=key).exists():
        raise TenantsError(f"A flag with key {key!r} already exists.", field="key")
    flag = Flag(
        key=key,
        description=description,
        default=default,
        tenant_editable=tenant_editable,
        risky=risky,
        kind=kind,
        default_value=default_value,
        variants=variants or [],
        rules=rules or [],
        schema=schema,
        requires_approval=requires_approval,
    )
    _clean_definition(flag)
    flag.save()
    versions_bump(_all_tenants())
    audit_record(actor=actor, action=AuditAction.FLAG_CREATE, obj=flag, after=_snapshot(flag, FLAG_FIELDS), ip=ip)
    return flag


@transaction.atomic
def flag_update(*, flag: Flag, actor: Any, ip: str | None = None, approved: bool = False, **fields: Any) -> Flag:
    """Change a flag definition (values, variants, rules, schema, editability, risk, approval, archived).

    A key and a kind are permanent: clients read the flag by key and parse its value by kind.
    A flag that requires approval is changed only with approved=True (an approved change request).
    """
    unknown = set(fields) - UPDATABLE_FLAG_FIELDS
    if unknown:
        raise TenantsError(
            f"flag_update cannot change {', '.join(sorted(unknown))}; a key and a kind are permanent.",
            field=sorted(unknown)[0],
        )
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    _refuse_unapproved(
        locked, approved=approved, operation=AuditAction.FLAG_UPDATE, params={"flag": locked.key, "fields": fields}
    )
    before = _snapshot(locked, FLAG_FIELDS)
    for name, value in fields.items():
        setattr(locked, name, value)
    _clean_definition(locked)
    locked.save()
    after = _snapshot(locked, FLAG_FIELDS)
    if after != before:
        versions_bump(_all_tenants())
    audit_record(actor=actor, action=AuditAction.FLAG_UPDATE, obj=locked, before=before, after=after, ip=ip)
    for name in FLAG_FIELDS:
        setattr(flag, name, getattr(locked, name))
    return flag


def _segment_snapshot(segment: Segment) -> dict:
    return audit_snapshot(segment, SEGMENT_FIELDS)


def _clean_segment(segment: Segment) -> None:
    if not re.match(FLAG_KEY_PATTERN, segment.key or ""):
        raise TenantsError("key: use 1-64 characters: a-z, 0-9, '_', '.', '-'.", field="key")
    try:
        segment.conditions = flagrules.validate_conditions(segment.conditions)
    except flagrules.RuleError as exc:
        raise _rule_error(exc) from None


def segment_users(segment: Segment) -> list[str]:
    """Return the keys of the flags whose rules use the segment."""
    return sorted(
        key
        for key, rules in Flag.objects.values_list("key", "rules")
        if any(r.get("segment") == segment.key for r in rules)
    )


def segment_definition_errors(*, conditions: list, key: str | None = None) -> list[TenantsError]:
    """Return every problem of a segment's conditions (one per condition) and, for a new one, its key."""
    errors: list[TenantsError] = []
    if key is not None:
        if not re.match(FLAG_KEY_PATTERN, key or ""):
            errors.append(TenantsError("key: use 1-64 characters: a-z, 0-9, '_', '.', '-'.", field="key"))
        elif Segment.objects.filter(key=key).exists():
            errors.append(TenantsError(f"A segment with key {key!r} already exists.", field="key"))
    if not isinstance(conditions, list) or len(conditions) > flagrules.MAX_CONDITIONS:
        try:
            flagrules.validate_conditions(conditions)
        except flagrules.RuleError as exc:
            return [*errors, _rule_error(exc)]
    for index, condition in enumerate(conditions):
        try:
            flagrules.validate_conditions([condition], field="conditions")
        except flagrules.RuleError as exc:
            path = f"conditions[{index}]" + exc.field[len("conditions[0]") :]
            errors.append(TenantsError(f"{path}: {exc.message}", field=path))
    return errors


@transaction.atomic
def segment_create(
    *, key: str, conditions: list, actor: Any, name: str = "", description: str = "", ip: str | None = None
) -> Segment:
    """Define a segment: conditions that must all hold (tenant attributes and evaluation context)."""
    if Segment.objects.filter(key=key).exists():
        raise TenantsError(f"A segment with key {key!r} already exists.", field="key")
    segment = Segment(key=key, name=name, description=description, conditions=conditions)
    _clean_segment(segment)
    segment.save()
    audit_record(actor=actor, action=AuditAction.SEGMENT_CREATE, obj=segment, after=_segment_snapshot(segment), ip=ip)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, actor: Any, ip: str | None = None, **fields: Any) -> Segment:
    """Change a segment's name, description or conditions; tenants whose flags use it are re-stamped."""
    unknown = set(fields) - {"name", "description", "conditions"}
    if unknown:
        raise TenantsError(
            f"segment_update cannot change {', '.join(sorted(unknown))}; a key is permanent.", field=sorted(unknown)[0]
        )
    locked = Segment.objects.select_for_update().get(pk=segment.pk)
    before = _segment_snapshot(locked)
    for name, value in fields.items():
        setattr(locked, name, value)
    _clean_segment(locked)
    locked.save()
    after = _segment_snapshot(locked)
    if after["conditions"] != before["conditions"] and segment_users(locked):
        versions_bump(_all_tenants())
    audit_record(actor=actor, action=AuditAction.SEGMENT_UPDATE, obj=locked, before=before, after=after, ip=ip)
    for name in SEGMENT_FIELDS:
        setattr(segment, name, getattr(locked, name))
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: Any, ip: str | None = None) -> None:
    """Delete a segment no flag rule uses; refused (naming the flags) while one does."""
    locked = Segment.objects.select_for_update().get(pk=segment.pk)
    users = segment_users(locked)
    if users:
        raise TenantsError(
            f"segment {locked.key} is used by the rules of {', '.join(users)}: remove those rules first.",
            field="segment",
        )
    before = _segment_snapshot(locked)
    audit_record(
        actor=actor,
        action=AuditAction.SEGMENT_DELETE,
        object_type="tenants.segment",
        object_id=str(locked.pk),
        before=before,
        ip=ip,
    )
    locked.delete()


def _override_snapshot(override: TenantFlag | None) -> dict | None:
    return None if override is None else _snapshot(override, OVERRIDE_FIELDS)


def _save_override(
    *,
    tenant: Tenant,
    flag: Flag,
    enabled: bool,
    rollout_percent: int,
    source: str,
    actor: Any,
    action: str,
    ip,
    variant: str = "",
    value: Any = None,
    owner_variants: Any = (),
    environment: str = PRODUCTION,
) -> TenantFlag:
    environment = environment_require(tenant, environment, lock=True)
    if not isinstance(rollout_percent, int) or isinstance(rollout_percent, bool) or not 0 <= rollout_percent <= 100:
        raise TenantsError("rollout_percent must be a whole number from 0 to 100.", field="rollout_percent")
    if source not in TenantFlag.Source.values:
        raise TenantsError(f"source must be one of {', '.join(TenantFlag.Source.values)}.", field="source")
    owner_variants = _clean_override_values(flag, variant or "", value, owner_variants)
    override = TenantFlag.objects.select_for_update().filter(tenant=tenant, environment=environment, flag=flag).first()
    before = _override_snapshot(override)
    if override is None:
        override = TenantFlag(tenant=tenant, environment=environment, flag=flag)
    override.enabled = bool(enabled)
    override.rollout_percent = rollout_percent
    override.variant = variant or ""
    override.value = value
    override.owner_variants = owner_variants
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
    variant: str = "",
    value: Any = None,
    owner_variants: Any = (),
    environment: str = PRODUCTION,
    ip: str | None = None,
    approved: bool = False,
) -> TenantFlag:
    """Set a tenant's override of a flag in one environment (platform admin); approved=True after approval.

    Typed flags: the override may serve a `variant` or a `value`, and bound the tenant
    owner's choice to `owner_variants`.
    """
    params = {"flag": flag.key, "tenant": tenant.slug, **_where(environment)}
    params.update({"enabled": enabled, "rollout_percent": rollout_percent})
    # Only what differs from the defaults: a boolean flag's request reads as it always did.
    typed = {"variant": variant, "value": value, "owner_variants": list(owner_variants or [])}
    params.update({name: v for name, v in typed.items() if v not in ("", None, [])})
    _refuse_unapproved(flag, approved=approved, operation=AuditAction.FLAG_SET_OVERRIDE, params=params)
    return _save_override(
        tenant=tenant,
        flag=flag,
        enabled=enabled,
        rollout_percent=rollout_percent,
        source=source,
        variant=variant,
        value=value,
        owner_variants=owner_variants,
        environment=environment,
        actor=actor,
        action=AuditAction.FLAG_SET_OVERRIDE,
        ip=ip,
    )


@transaction.atomic
def flag_clear_override(
    *,
    tenant: Tenant,
    flag: Flag,
    actor: Any,
    environment: str = PRODUCTION,
    ip: str | None = None,
    approved: bool = False,
) -> bool:
    """Remove a tenant's override in one environment so the rules, plan or default apply; True if one existed."""
    environment = environment_require(tenant, environment, lock=True)
    override = TenantFlag.objects.select_for_update().filter(tenant=tenant, environment=environment, flag=flag).first()
    if override is None:
        return False
    _refuse_unapproved(
        flag,
        approved=approved,
        operation=AuditAction.FLAG_CLEAR_OVERRIDE,
        params={"flag": flag.key, "tenant": tenant.slug, **_where(environment)},
    )
    before = _override_snapshot(override)
    override.delete()
    _layer_removed(tenant)
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


def _where(environment: str) -> dict:
    """Return the `environment` param of a change, left out for production (so older requests read the same)."""
    return {} if environment == PRODUCTION else {"environment": environment}


def _owner_snapshot(toggle: OwnerToggle | None) -> dict | None:
    if toggle is None:
        return None
    return {
        **_where(toggle.environment),
        "enabled": toggle.enabled,
        **({"variant": toggle.variant} if toggle.variant else {}),
    }


def _save_owner_toggle(
    *,
    tenant: Tenant,
    flag: Flag,
    enabled: bool,
    actor: Any,
    ip,
    reason: str = "",
    variant: str = "",
    environment: str = PRODUCTION,
) -> OwnerToggle:
    toggle = OwnerToggle.objects.select_for_update().filter(tenant=tenant, environment=environment, flag=flag).first()
    before = _owner_snapshot(toggle)
    toggle = toggle or OwnerToggle(tenant=tenant, environment=environment, flag=flag)
    toggle.enabled = bool(enabled)
    toggle.variant = variant if enabled else ""
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
def flag_owner_toggle(
    *,
    tenant: Tenant,
    flag: Flag,
    enabled: bool,
    actor: Any,
    variant: str = "",
    environment: str = PRODUCTION,
    ip: str | None = None,
) -> OwnerToggle:
    """Record a tenant owner's or admin's choice for a tenant-editable flag, within the platform's override.

    The platform's override (if any) is left as it is: "off" turns the flag off for the tenant,
    "on" gives back what the platform set (its rollout percentage), never more. A `variant` is
    the owner's pick among the override's `owner_variants`, the bounds the platform set.
    Owners' toggles are not subject to a flag's approval: the platform's override already bounds them.
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
    environment = environment_require(tenant, environment, lock=True)
    override = TenantFlag.objects.filter(tenant=tenant, environment=environment, flag=flag).first()
    if enabled and override is not None and not override.enabled:
        raise TenantsError(
            f"The platform team has turned “{flag.key}” off for this tenant; an owner toggle cannot turn it on. "
            "Ask the platform team.",
            field="enabled",
        )
    if variant:
        allowed = override.owner_variants if override is not None and override.enabled else []
        if not enabled or variant not in allowed:
            choices = ", ".join(allowed) if allowed else "none: the platform team has not opened any"
            raise TenantsError(
                f"“{variant}” is not a variant owners may pick for “{flag.key}” (allowed: {choices}).", field="variant"
            )
    return _save_owner_toggle(
        tenant=tenant, flag=flag, enabled=enabled, actor=actor, ip=ip, variant=variant, environment=environment
    )


@transaction.atomic
def owner_toggle_restore(
    *,
    tenant: Tenant,
    flag: Flag,
    enabled: bool,
    actor: Any,
    variant: str = "",
    environment: str = PRODUCTION,
    ip: str | None = None,
) -> OwnerToggle:
    """Set a tenant owner's choice on the owners' behalf (flags_import restoring an export); audited as the actor.

    The `variant` is restored as it was exported, not checked against today's `owner_variants`:
    the evaluator ignores a pick outside the bounds, so a narrowed bound survives a round trip.
    """
    if not flag.tenant_editable:
        raise FlagNotEditable(f"“{flag.key}” is not editable by tenant owners: an owner toggle cannot be restored.")
    if variant and (not enabled or not re.match(flagrules.VARIANT_KEY_PATTERN, variant)):
        raise TenantsError(
            "an owner's variant is a variant key (a-z, 0-9, '_', '.', '-'), with the flag on.", field="variant"
        )
    return _save_owner_toggle(
        tenant=tenant,
        flag=flag,
        enabled=enabled,
        actor=actor,
        ip=ip,
        variant=variant,
        environment=environment_require(tenant, environment, lock=True),
        reason="restored on the owners' behalf",
    )


@transaction.atomic
def flag_owner_reset(
    *,
    tenant: Tenant,
    flag: Flag,
    actor: Any,
    environment: str = PRODUCTION,
    ip: str | None = None,
    approved: bool = False,
) -> bool:
    """Remove the tenant owner's choice for a flag in one environment (platform admin); True if there was one."""
    environment = environment_require(tenant, environment, lock=True)
    toggle = OwnerToggle.objects.select_for_update().filter(tenant=tenant, environment=environment, flag=flag).first()
    if toggle is None:
        return False
    _refuse_unapproved(
        flag,
        approved=approved,
        operation=AuditAction.FLAG_OWNER_RESET,
        params={"flag": flag.key, "tenant": tenant.slug, **_where(environment)},
    )
    before = _owner_snapshot(toggle)
    toggle.delete()
    _layer_removed(tenant)
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
