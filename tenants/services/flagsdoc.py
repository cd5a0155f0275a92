"""Flags and tenants as code: export the platform's flags, plans, tenants and overrides as one document,
and apply such a document through the services (validated, audited, idempotent).

The document (version 1) is a mapping keyed by identifiers, so that a change reads as a
small diff in review:

    version: 1
    flags:   {<key>: {description, default, tenant_editable, risky, archived}}
    plans:   {<code>: {name, rate_limit_per_minute, burst, daily_quota, default_flags}}
    tenants: {<slug>: {id, name, plan, status, status_reason, settings, upstream_url,
                       overrides: {<flag key>: {enabled, rollout_percent}},
                       owner_toggles: {<flag key>: true | false}}}

API keys, members and usage are not part of it: secrets never leave the database.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from tenants.exceptions import TenantsError
from tenants.models import FLAG_KEY_PATTERN, Flag, Plan, Tenant, TenantFlag
from tenants.services.flags import (
    flag_clear_override,
    flag_create,
    flag_owner_reset,
    flag_set_override,
    flag_update,
    owner_toggle_restore,
)
from tenants.services.plans import plan_create, plan_update
from tenants.services.tenants import (
    tenant_activate,
    tenant_create,
    tenant_offboard,
    tenant_resume,
    tenant_suspend,
    tenant_update,
)
from tenants.settings_schema import settings_validate

DOCUMENT_VERSION = 1
IMPORT_REASON = "flags_import"
# What an import's actor must hold: it may create and change flags, plans and tenants.
IMPORT_PERMISSIONS = (
    "tenants.add_flag",
    "tenants.change_flag",
    "tenants.add_plan",
    "tenants.change_plan",
    "tenants.add_tenant",
    "tenants.change_tenant",
)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_ABSENT = object()


class DocumentError(TenantsError):
    """The document does not describe a valid estate; the message starts with the path of the problem."""


# ---------------------------------------------------------------------------------------------- the schema
def _boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise DocumentError(f"{path}: must be true or false, not {json.dumps(value)}.")
    return value


def _text(limit: int) -> Callable[[str, Any], str]:
    def check(path: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise DocumentError(f"{path}: must be a string of at most {limit} characters.")
        return value

    return check


def _count(path: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DocumentError(f"{path}: must be a whole number >= 0, or null for the default.")
    return value


def _percent(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise DocumentError(f"{path}: a whole number from 0 to 100, not {json.dumps(value)}.")
    return value


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(path: str, value: Any) -> str:
        if value not in choices:
            raise DocumentError(f"{path}: one of {', '.join(choices)}, not {json.dumps(value)}.")
        return value

    return check


def _mapping(path: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise DocumentError(f"{path}: must be a mapping.")
    return value


# field -> (check, default); _ABSENT means required.
FLAG_SPEC = {
    "description": (_text(10_000), ""),
    "default": (_boolean, False),
    "tenant_editable": (_boolean, False),
    "risky": (_boolean, False),
    "archived": (_boolean, False),
}
PLAN_SPEC = {
    "name": (_text(100), _ABSENT),
    "rate_limit_per_minute": (_count, None),
    "burst": (_count, None),
    "daily_quota": (_count, None),
    "default_flags": (_mapping, {}),
}


def _uuid(path: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise DocumentError(f"{path}: must be a UUID such as 0b8e2f1c-…, or left out for a new id.") from None


TENANT_SPEC = {
    "id": (_uuid, None),
    "name": (_text(200), _ABSENT),
    "plan": (_text(40), _ABSENT),
    "status": (_choice(*Tenant.Status.values), Tenant.Status.TRIAL.value),
    "status_reason": (_text(500), ""),
    "settings": (_mapping, {}),
    "upstream_url": (_text(200), ""),
    "overrides": (_mapping, {}),
    "owner_toggles": (_mapping, {}),
}
OVERRIDE_SPEC = {
    "enabled": (_boolean, _ABSENT),
    "rollout_percent": (_percent, 100),
}


def _record(path: str, value: Any, spec: dict) -> dict:
    value = _mapping(path, {} if value is None else value)
    unknown = sorted(set(value) - set(spec))
    if unknown:
        raise DocumentError(f"{path}: unknown field {unknown[0]!r}; the fields are {', '.join(spec)}.")
    record = {}
    for name, (check, default) in spec.items():
        if name in value:
            record[name] = check(f"{path}.{name}", value[name])
        elif default is _ABSENT:
            raise DocumentError(f"{path}.{name}: missing; it is required.")
        else:
            record[name] = default.copy() if isinstance(default, dict) else default
    return record


def flags_document_parse(data: Any) -> dict:
    """Return the document validated and with every default filled in, or raise DocumentError naming the path."""
    data = _mapping("document", data)
    unknown = sorted(set(data) - {"version", "flags", "plans", "tenants"})
    if unknown:
        raise DocumentError(f"{unknown[0]}: unknown section; the sections are version, flags, plans, tenants.")
    if data.get("version") != DOCUMENT_VERSION:
        raise DocumentError(
            f"version: this file is version {data.get('version')}; flags_import reads version {DOCUMENT_VERSION}."
        )
    for section in ("flags", "plans", "tenants"):
        if section not in data:
            raise DocumentError(f"{section}: missing; give an empty mapping ({section}: {{}}) if there are none.")
        _mapping(section, data[section])

    flags = {}
    for key, value in data["flags"].items():
        if not isinstance(key, str) or not re.match(FLAG_KEY_PATTERN, key):
            raise DocumentError(f"flags.{key}: a flag key is 1-64 characters: a-z, 0-9, '_', '.', '-'.")
        flags[key] = _record(f"flags.{key}", value, FLAG_SPEC)
    known_flags = set(flags) | set(Flag.objects.values_list("key", flat=True))

    plans = {}
    for code, value in data["plans"].items():
        if not isinstance(code, str) or not _SLUG.match(code) or len(code) > 40:
            raise DocumentError(f"plans.{code}: a plan code is 1-40 characters: letters, digits, '-' and '_'.")
        plan = _record(f"plans.{code}", value, PLAN_SPEC)
        for key, enabled in plan["default_flags"].items():
            if key not in known_flags:
                raise DocumentError(f"plans.{code}.default_flags.{key}: no flag {key!r} in the document or database.")
            _boolean(f"plans.{code}.default_flags.{key}", enabled)
        plans[code] = plan
    known_plans = set(plans) | set(Plan.objects.values_list("code", flat=True))

    tenants = {}
    for slug, value in data["tenants"].items():
        path = f"tenants.{slug}"
        if not isinstance(slug, str) or not _SLUG.match(slug) or len(slug) > 50:
            raise DocumentError(f"{path}: a tenant slug is 1-50 characters: letters, digits, '-' and '_'.")
        tenant = _record(path, value, TENANT_SPEC)
        if tenant["plan"] not in known_plans:
            raise DocumentError(f"{path}.plan: unknown plan {tenant['plan']!r}; add it under plans.")
        try:
            tenant["settings"] = settings_validate(tenant["settings"])
        except TenantsError as exc:
            raise DocumentError(f"{path}.{exc.message}") from None
        overrides = {}
        for key, override in tenant["overrides"].items():
            if key not in known_flags:
                raise DocumentError(f"{path}.overrides.{key}: no flag {key!r} in the document or database.")
            overrides[key] = _record(f"{path}.overrides.{key}", override, OVERRIDE_SPEC)
        tenant["overrides"] = overrides
        for key, enabled in tenant["owner_toggles"].items():
            if key not in known_flags:
                raise DocumentError(f"{path}.owner_toggles.{key}: no flag {key!r} in the document or database.")
            _boolean(f"{path}.owner_toggles.{key}", enabled)
        tenants[slug] = tenant
    return {"version": DOCUMENT_VERSION, "flags": flags, "plans": plans, "tenants": tenants}


# ---------------------------------------------------------------------------------------------- export
def _flag_record(flag: Flag) -> dict:
    return {name: getattr(flag, name) for name in FLAG_SPEC}


def _plan_record(plan: Plan) -> dict:
    record = {name: getattr(plan, name) for name in PLAN_SPEC}
    record["default_flags"] = dict(sorted(plan.default_flags.items()))
    return record


def _override_record(override: TenantFlag) -> dict:
    return {"enabled": override.enabled, "rollout_percent": override.rollout_percent}


def _tenant_record(tenant: Tenant) -> dict:
    return {
        "id": str(tenant.pk),
        "name": tenant.name,
        "plan": tenant.plan.code,
        "status": tenant.status,
        "status_reason": tenant.status_reason,
        "settings": tenant.settings or {},
        "upstream_url": tenant.upstream_url,
        "overrides": {
            override.flag.key: _override_record(override)
            for override in sorted(tenant.flag_overrides.all(), key=lambda o: o.flag.key)
        },
        "owner_toggles": {
            toggle.flag.key: toggle.enabled for toggle in sorted(tenant.owner_toggles.all(), key=lambda t: t.flag.key)
        },
    }


def _tenants():
    return (
        Tenant.objects.select_related("plan")
        .prefetch_related("flag_overrides__flag", "owner_toggles__flag")
        .order_by("slug")
    )


def flags_document_export() -> dict:
    """Return every flag, plan, tenant and override as a version-1 document, sorted by identifier."""
    return {
        "version": DOCUMENT_VERSION,
        "flags": {flag.key: _flag_record(flag) for flag in Flag.objects.order_by("key")},
        "plans": {plan.code: _plan_record(plan) for plan in Plan.objects.order_by("code")},
        "tenants": {tenant.slug: _tenant_record(tenant) for tenant in _tenants()},
    }


# ---------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Change:
    """One change an import makes: `op` is + (create), ~ (update) or - (remove or archive)."""

    op: str
    kind: str
    name: str
    fields: dict = field(default_factory=dict)  # name -> (before, after)
    target: dict = field(default_factory=dict)

    def line(self) -> str:
        """Return the change as one diff line, e.g. `~ plan std: daily_quota 1000 -> 2000`."""
        text = f"{self.op} {self.kind} {self.name}"
        if self.op == "~" and self.fields:
            text += ": " + ", ".join(
                f"{name} {json.dumps(before, sort_keys=True)} -> {json.dumps(after, sort_keys=True)}"
                for name, (before, after) in self.fields.items()
            )
        elif self.op == "-" and self.kind == "flag":
            text += ": archived (kept for the audit trail and history)"
        return text


def _changed(before: dict, after: dict, names) -> dict:
    return {name: (before[name], after[name]) for name in names if before[name] != after[name]}


def _status_change(slug: str, current: str, wanted: str) -> None:
    """Raise DocumentError for a status change no service makes."""
    if current == wanted:
        return
    if current == Tenant.Status.DELETED:
        raise DocumentError(f"tenants.{slug}.status: a deleted tenant cannot be restored ({wanted}).")
    if wanted in (Tenant.Status.SUSPENDED, Tenant.Status.DELETED):
        return
    if current == Tenant.Status.SUSPENDED and wanted == Tenant.Status.ACTIVE:
        return
    raise DocumentError(
        f"tenants.{slug}.status: flags_import does not change {current} to {wanted}; "
        "suspend, resume (to active) or delete are the status changes it makes."
    )


def _upserts(kind: str, current: dict, wanted: dict, names, *, prefix: str = "") -> list[Change]:
    """Return + changes for what `current` lacks and ~ changes for what differs, by name."""
    changes = []
    for name, record in wanted.items():
        if name not in current:
            changes.append(Change("+", kind, prefix + name, target=record))
        elif fields := _changed(current[name], record, names):
            changes.append(Change("~", kind, prefix + name, fields, record))
    return changes


def flags_document_plan(doc: dict, *, prune: bool = False) -> list[Change]:
    """Return the changes that applying the parsed `doc` would make, in the order they are applied."""
    flags = {flag.key: flag for flag in Flag.objects.all()}
    changes = _upserts("flag", {key: _flag_record(flag) for key, flag in flags.items()}, doc["flags"], FLAG_SPEC)
    plans = {plan.code: _plan_record(plan) for plan in Plan.objects.all()}
    changes += _upserts("plan", plans, doc["plans"], PLAN_SPEC)

    tenants = {tenant.slug: tenant for tenant in _tenants()}
    overrides: list[Change] = []
    for slug, wanted in doc["tenants"].items():
        current = _tenant_record(tenants[slug]) if slug in tenants else None
        if current is None:
            changes.append(Change("+", "tenant", slug, target=wanted))
            current_overrides = {}
        else:
            if wanted["id"] not in (None, current["id"]):
                raise DocumentError(
                    f"tenants.{slug}.id: the database's tenant {slug} has id {current['id']}; a tenant's id is "
                    "permanent (rollouts hash on it), so give that id or leave it out."
                )
            _status_change(slug, current["status"], wanted["status"])
            names = ["name", "plan", "settings", "upstream_url", "status"]
            if fields := _changed(current, wanted, names):
                changes.append(Change("~", "tenant", slug, fields, wanted))
            current_overrides = current["overrides"]
        overrides += _upserts("override", current_overrides, wanted["overrides"], OVERRIDE_SPEC, prefix=f"{slug}/")
        current_toggles = {key: {"enabled": on} for key, on in (current or {}).get("owner_toggles", {}).items()}
        wanted_toggles = {key: {"enabled": on} for key, on in wanted["owner_toggles"].items()}
        overrides += _upserts("owner_toggle", current_toggles, wanted_toggles, ["enabled"], prefix=f"{slug}/")
        if prune:
            overrides += [
                Change("-", "override", f"{slug}/{key}") for key in current_overrides if key not in wanted["overrides"]
            ]
            overrides += [
                Change("-", "owner_toggle", f"{slug}/{key}") for key in current_toggles if key not in wanted_toggles
            ]
    changes += overrides
    if prune:
        changes += [
            Change("-", "flag", key)
            for key, flag in sorted(flags.items())
            if key not in doc["flags"] and not flag.archived
        ]
    return changes


# ---------------------------------------------------------------------------------------------- apply
def _apply_tenant(change: Change, actor: Any) -> None:
    wanted = change.target
    plan = Plan.objects.get(code=wanted["plan"])
    if change.op == "+":
        serving = wanted["status"] if wanted["status"] in (Tenant.Status.TRIAL, Tenant.Status.ACTIVE) else "active"
        tenant = tenant_create(
            slug=change.name,
            name=wanted["name"],
            plan=plan,
            settings=wanted["settings"],
            upstream_url=wanted["upstream_url"],
            status=serving,
            tenant_id=uuid.UUID(wanted["id"]) if wanted["id"] else None,
            actor=actor,
        )
        current_status = serving
    else:
        tenant = Tenant.objects.get(slug=change.name)
        current_status = tenant.status
        updates = {name: wanted[name] for name in ("name", "settings", "upstream_url") if name in change.fields}
        if "plan" in change.fields:
            updates["plan"] = plan
        if updates:
            tenant = tenant_update(tenant=tenant, actor=actor, **updates)
    reason = wanted["status_reason"] or IMPORT_REASON
    if wanted["status"] == current_status:
        return
    if wanted["status"] == Tenant.Status.SUSPENDED:
        tenant_suspend(tenant=tenant, reason=reason, actor=actor)
    elif wanted["status"] == Tenant.Status.DELETED:
        tenant_offboard(tenant=tenant, reason=reason, actor=actor)
    else:
        tenant = tenant_resume(tenant=tenant, actor=actor)
        # Resume returns to the state the suspension interrupted; the document asks for active.
        if tenant.status == Tenant.Status.TRIAL and wanted["status"] == Tenant.Status.ACTIVE:
            tenant_activate(tenant=tenant, actor=actor)


def _apply(change: Change, actor: Any) -> None:
    wanted = change.target
    if change.kind == "flag":
        if change.op == "+":
            flag = flag_create(
                key=change.name,
                description=wanted["description"],
                default=wanted["default"],
                tenant_editable=wanted["tenant_editable"],
                risky=wanted["risky"],
                actor=actor,
            )
            if wanted["archived"]:
                flag_update(flag=flag, archived=True, actor=actor)
        elif change.op == "~":
            flag_update(flag=Flag.objects.get(key=change.name), actor=actor, **{n: wanted[n] for n in change.fields})
        else:
            flag_update(flag=Flag.objects.get(key=change.name), archived=True, actor=actor)
    elif change.kind == "plan":
        if change.op == "+":
            plan_create(code=change.name, actor=actor, **wanted)
        else:
            plan_update(plan=Plan.objects.get(code=change.name), actor=actor, **{n: wanted[n] for n in change.fields})
    elif change.kind == "tenant":
        _apply_tenant(change, actor)
    else:
        slug, key = change.name.split("/", 1)
        tenant, flag = Tenant.objects.get(slug=slug), Flag.objects.get(key=key)
        if change.kind == "owner_toggle":
            _apply_owner_toggle(change, tenant, flag, actor)
        elif change.op == "-":
            flag_clear_override(tenant=tenant, flag=flag, actor=actor)
        else:
            flag_set_override(
                tenant=tenant,
                flag=flag,
                enabled=wanted["enabled"],
                rollout_percent=wanted["rollout_percent"],
                actor=actor,
            )


def _apply_owner_toggle(change: Change, tenant: Tenant, flag: Flag, actor: Any) -> None:
    """Restore or remove a tenant owner's choice (the platform acting on the owners' behalf, audited as such)."""
    if change.op == "-":
        flag_owner_reset(tenant=tenant, flag=flag, actor=actor)
    else:
        owner_toggle_restore(tenant=tenant, flag=flag, enabled=change.target["enabled"], actor=actor)


@transaction.atomic
def flags_document_apply(doc: dict, *, actor: Any, prune: bool = False) -> list[Change]:
    """Apply the parsed `doc` in one transaction through the services (one audit row per change); return the changes."""
    changes = flags_document_plan(doc, prune=prune)
    for change in changes:
        _apply(change, actor)
    return changes
