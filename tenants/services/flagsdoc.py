"""Flags and tenants as code: export the platform's segments, flags, plans, tenants and overrides as one
document, and apply such a document through the services (validated, audited, idempotent).

The document (version 2) is a mapping keyed by identifiers, so that a change reads as a
small diff in review:

    version:  2
    segments: {<key>: {name, description, conditions: [{attribute, op, values}]}}
    flags:    {<key>: {description, kind, default, default_value, variants, rules, schema,
                       requires_approval, tenant_editable, risky, archived}}
    plans:    {<code>: {name, rate_limit_per_minute, burst, daily_quota, max_environments, default_flags}}
    tenants:  {<slug>: {id, name, plan, status, status_reason, settings, labels, upstream_url,
                        overrides: {<flag key>: {enabled, rollout_percent, variant, value, owner_variants}},
                        owner_toggles: {<flag key>: true | false | {enabled, variant}},
                        environments: {<key>: {name, overrides: {…}, owner_toggles: {…}}}}}

A tenant's `overrides` and `owner_toggles` are its production environment's (every tenant
has production); `environments` holds its other environments, each with its own layers, and
is left out of an export for a tenant that has none, so such a document reads as before.

Version 1 documents (no segments, boolean flags only, owner toggles true | false) are read as
version 2 documents with every new field at its default. API keys, members and usage are not
part of it: secrets never leave the database.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction

from tenants import flagrules
from tenants.exceptions import TenantsError
from tenants.models import (
    ENVIRONMENT_KEY_PATTERN,
    FLAG_KEY_PATTERN,
    PRODUCTION,
    ApiKey,
    Flag,
    OwnerToggle,
    Plan,
    Segment,
    Tenant,
    TenantFlag,
)
from tenants.services.environments import environment_create, environment_delete
from tenants.services.flags import (
    flag_clear_override,
    flag_create,
    flag_owner_reset,
    flag_set_override,
    flag_update,
    owner_toggle_restore,
    segment_create,
    segment_delete,
    segment_update,
)
from tenants.services.plans import plan_create, plan_update
from tenants.services.tenants import (
    labels_validate,
    tenant_activate,
    tenant_create,
    tenant_offboard,
    tenant_resume,
    tenant_suspend,
    tenant_update,
)
from tenants.settings_schema import settings_validate

DOCUMENT_VERSION = 2
#: Versions flags_import reads: a version-1 document is read as version 2 with the new fields at their defaults.
READABLE_VERSIONS = (1, 2)
IMPORT_REASON = "flags_import"
# What an import's actor must hold: it may create and change flags, plans and tenants.
IMPORT_PERMISSIONS = (
    "tenants.add_flag",
    "tenants.change_flag",
    "tenants.add_plan",
    "tenants.change_plan",
    "tenants.add_tenant",
    "tenants.change_tenant",
    "tenants.add_segment",
    "tenants.change_segment",
    "tenants.delete_segment",
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


def _environments_bound(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32767:
        raise DocumentError(
            f"{path}: must be a whole number >= 1 (environments a tenant may have, production included)."
        )
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


def _any(path: str, value: Any) -> Any:
    return value


def _list(path: str, value: Any) -> list:
    if not isinstance(value, list):
        raise DocumentError(f"{path}: must be a list.")
    return value


def _optional_mapping(path: str, value: Any) -> dict | None:
    return None if value is None else _mapping(path, value)


def _variant_key(path: str, value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not re.match(flagrules.VARIANT_KEY_PATTERN, value):
        raise DocumentError(f"{path}: a variant key is 1-64 characters: a-z, 0-9, '_', '.', '-'.")
    return value


def _variant_keys(path: str, value: Any) -> list[str]:
    for index, key in enumerate(_list(path, value)):
        _variant_key(f"{path}[{index}]", key)
    return value


# field -> (check, default); _ABSENT means required. Fields a version-1 document may not name are in V2_ONLY.
SEGMENT_SPEC = {
    "name": (_text(200), ""),
    "description": (_text(10_000), ""),
    "conditions": (_list, []),
}
FLAG_SPEC = {
    "description": (_text(10_000), ""),
    "kind": (_choice(*flagrules.KINDS), Flag.Kind.BOOLEAN.value),
    "default": (_boolean, False),
    "default_value": (_any, None),
    "variants": (_list, []),
    "rules": (_list, []),
    "schema": (_optional_mapping, None),
    "requires_approval": (_boolean, False),
    "tenant_editable": (_boolean, False),
    "risky": (_boolean, False),
    "archived": (_boolean, False),
}
PLAN_SPEC = {
    "name": (_text(100), _ABSENT),
    "rate_limit_per_minute": (_count, None),
    "burst": (_count, None),
    "daily_quota": (_count, None),
    "max_environments": (_environments_bound, 3),
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
    "labels": (_list, []),
    "upstream_url": (_text(200), ""),
    "overrides": (_mapping, {}),
    "owner_toggles": (_mapping, {}),
    "environments": (_mapping, {}),
}
# One of a tenant's environments besides production: its flag layers, as the tenant's own.
ENVIRONMENT_SPEC = {
    "name": (_text(100), ""),
    "overrides": (_mapping, {}),
    "owner_toggles": (_mapping, {}),
}
OVERRIDE_SPEC = {
    "enabled": (_boolean, _ABSENT),
    "rollout_percent": (_percent, 100),
    "variant": (_variant_key, ""),
    "value": (_any, None),
    "owner_variants": (_variant_keys, []),
}
OWNER_TOGGLE_SPEC = {
    "enabled": (_boolean, _ABSENT),
    "variant": (_variant_key, ""),
}
V2_ONLY = {
    "flags": {"kind", "default_value", "variants", "rules", "schema", "requires_approval"},
    "tenants": {"labels", "environments"},
    "overrides": {"variant", "value", "owner_variants"},
    "plans": {"max_environments"},
}
# What export leaves out while at its default, so a boolean flag reads as it did in version 1.
QUIET: dict[str, Any] = {
    "kind": Flag.Kind.BOOLEAN.value,
    "default_value": None,
    "variants": [],
    "rules": [],
    "schema": None,
    "requires_approval": False,
    "labels": [],
    "environments": {},
    "max_environments": 3,
    "variant": "",
    "value": None,
    "owner_variants": [],
}


def _record(path: str, value: Any, spec: dict, *, version: int = DOCUMENT_VERSION, v2_only=frozenset()) -> dict:
    value = _mapping(path, {} if value is None else value)
    unknown = sorted(set(value) - set(spec))
    if unknown:
        raise DocumentError(f"{path}: unknown field {unknown[0]!r}; the fields are {', '.join(spec)}.")
    newer = sorted(set(value) & set(v2_only)) if version < 2 else []
    if newer:
        raise DocumentError(f"{path}.{newer[0]}: a version 2 field; set `version: 2` to use it.")
    record = {}
    for name, (check, default) in spec.items():
        if name in value:
            record[name] = check(f"{path}.{name}", value[name])
        elif default is _ABSENT:
            raise DocumentError(f"{path}.{name}: missing; it is required.")
        else:
            record[name] = default.copy() if isinstance(default, dict | list) else default
    return record


def _rule_checked(path: str, check: Callable[[], Any]) -> Any:
    """Run a flagrules validator; a RuleError becomes a DocumentError at `path` plus the rule's field."""
    try:
        return check()
    except flagrules.RuleError as exc:
        raise DocumentError(f"{path}.{exc.field}: {exc.message}") from None


def _flag_definition(path: str, flag: dict, segment_keys: set[str]) -> None:
    """Validate a flag's kind, values, variants, schema and rules as the service will; normalise them in place."""
    kind = flag["kind"]
    if kind != Flag.Kind.JSON and flag["schema"] is not None:
        raise DocumentError(f"{path}.schema: only a json flag has a JSON Schema.")
    if kind == Flag.Kind.BOOLEAN and flag["default_value"] is not None:
        raise DocumentError(f"{path}.default_value: a boolean flag has no default value: set `default`.")
    if kind != Flag.Kind.BOOLEAN and flag["default_value"] is None:
        raise DocumentError(f"{path}.default_value: missing; a {kind} flag needs a default value.")
    schema = _rule_checked(path, lambda: flagrules.validate_schema(flag["schema"])) if kind == "json" else None
    if kind != Flag.Kind.BOOLEAN:
        _rule_checked(
            path, lambda: flagrules.validate_value(kind, flag["default_value"], field="default_value", schema=schema)
        )
    variants = _rule_checked(path, lambda: flagrules.validate_variants(kind, flag["variants"], schema=schema))
    flag["rules"] = _rule_checked(
        path,
        lambda: flagrules.validate_rules(
            flag["rules"], kind=kind, variants=variants, schema=schema, segment_keys=segment_keys
        ),
    )
    flag["schema"], flag["variants"] = schema, variants


def _version(data: dict) -> int:
    version = data.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise DocumentError(f"version: this file is version {version}; flags_import reads versions {readable}.")
    return version


def _refuse_nul(value: Any, path: str = "") -> None:
    """Raise DocumentError at the first string (or key) holding a NUL character: the database stores none."""
    if isinstance(value, str):
        if "\x00" in value:
            raise DocumentError(f"{path or 'document'}: text cannot contain a NUL character.")
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if isinstance(key, str):
            _refuse_nul(key, where)
        _refuse_nul(item, where)


def _layers(path: str, record: dict, version: int, known_flags: set[str]) -> dict:
    """Validate the `overrides` and `owner_toggles` of a tenant or one of its environments in place; return it."""
    overrides = {}
    for key, override in record["overrides"].items():
        where = f"{path}.overrides.{key}"
        if key not in known_flags:
            raise DocumentError(f"{where}: no flag {key!r} in the document or database.")
        overrides[key] = _record(where, override, OVERRIDE_SPEC, version=version, v2_only=V2_ONLY["overrides"])
    record["overrides"] = overrides
    toggles = {}
    for key, toggle in record["owner_toggles"].items():
        where = f"{path}.owner_toggles.{key}"
        if key not in known_flags:
            raise DocumentError(f"{where}: no flag {key!r} in the document or database.")
        if isinstance(toggle, dict) and version >= 2:
            toggles[key] = _record(where, toggle, OWNER_TOGGLE_SPEC)
            if toggles[key]["variant"] and not toggles[key]["enabled"]:
                raise DocumentError(f"{where}.variant: an owner picks a variant only with the flag on.")
        else:
            toggles[key] = {"enabled": _boolean(where, toggle), "variant": ""}
    record["owner_toggles"] = toggles
    return record


def flags_document_parse(data: Any) -> dict:
    """Return the document validated and with every default filled in, or raise DocumentError naming the path.

    A version-1 document comes back as version 2 with every new field at its default, and `segments`
    None: it does not manage them.
    """
    data = _mapping("document", data)
    _refuse_nul(data)
    sections = ("version", "segments", "flags", "plans", "tenants")
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise DocumentError(f"{unknown[0]}: unknown section; the sections are {', '.join(sections)}.")
    version = _version(data)
    if version < 2 and "segments" in data:
        raise DocumentError("segments: a version 2 section; set `version: 2` to use it.")
    for section in sections[1:] if version >= 2 else sections[2:]:
        if section not in data:
            raise DocumentError(f"{section}: missing; give an empty mapping ({section}: {{}}) if there are none.")
        _mapping(section, data[section])

    segments = {}
    for key, value in data.get("segments", {}).items():
        path = f"segments.{key}"
        if not isinstance(key, str) or not re.match(FLAG_KEY_PATTERN, key):
            raise DocumentError(f"{path}: a segment key is 1-64 characters: a-z, 0-9, '_', '.', '-'.")
        segment = _record(path, value, SEGMENT_SPEC)
        segment["conditions"] = _rule_checked(path, partial(flagrules.validate_conditions, segment["conditions"]))
        segments[key] = segment
    segment_keys = set(segments) | set(Segment.objects.values_list("key", flat=True))

    flags = {}
    for key, value in data["flags"].items():
        if not isinstance(key, str) or not re.match(FLAG_KEY_PATTERN, key):
            raise DocumentError(f"flags.{key}: a flag key is 1-64 characters: a-z, 0-9, '_', '.', '-'.")
        flag = _record(f"flags.{key}", value, FLAG_SPEC, version=version, v2_only=V2_ONLY["flags"])
        _flag_definition(f"flags.{key}", flag, segment_keys)
        flags[key] = flag
    known_flags = set(flags) | set(Flag.objects.values_list("key", flat=True))

    plans = {}
    for code, value in data["plans"].items():
        if not isinstance(code, str) or not _SLUG.match(code) or len(code) > 40:
            raise DocumentError(f"plans.{code}: a plan code is 1-40 characters: letters, digits, '-' and '_'.")
        plan = _record(f"plans.{code}", value, PLAN_SPEC, version=version, v2_only=V2_ONLY["plans"])
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
        tenant = _record(path, value, TENANT_SPEC, version=version, v2_only=V2_ONLY["tenants"])
        if tenant["plan"] not in known_plans:
            raise DocumentError(f"{path}.plan: unknown plan {tenant['plan']!r}; add it under plans.")
        try:
            tenant["settings"] = settings_validate(tenant["settings"])
        except TenantsError as exc:
            raise DocumentError(f"{path}.{exc.message}") from None
        try:
            tenant["labels"] = labels_validate(tenant["labels"])
        except TenantsError as exc:
            raise DocumentError(f"{path}.labels: {exc.message}") from None
        _layers(path, tenant, version, known_flags)
        environments = {}
        for key, value in tenant["environments"].items():
            where = f"{path}.environments.{key}"
            if key == PRODUCTION:
                raise DocumentError(
                    f"{where}: production is the tenant's own overrides and owner_toggles; set them there."
                )
            if not isinstance(key, str) or not re.match(ENVIRONMENT_KEY_PATTERN, key):
                raise DocumentError(
                    f"{where}: an environment key is 1-32 characters: a-z, 0-9, '-', starting with a letter."
                )
            environments[key] = _layers(where, _record(where, value, ENVIRONMENT_SPEC), version, known_flags)
        tenant["environments"] = environments
        tenants[slug] = tenant
    # A version-1 file says nothing about segments: None leaves them alone, --prune included.
    managed = segments if version >= 2 else None
    return {"version": DOCUMENT_VERSION, "segments": managed, "flags": flags, "plans": plans, "tenants": tenants}


# ---------------------------------------------------------------------------------------------- export
def _segment_record(segment: Segment) -> dict:
    return {name: getattr(segment, name) for name in SEGMENT_SPEC}


def _flag_record(flag: Flag) -> dict:
    return {name: getattr(flag, name) for name in FLAG_SPEC}


def _plan_record(plan: Plan) -> dict:
    record = {name: getattr(plan, name) for name in PLAN_SPEC}
    record["default_flags"] = dict(sorted(plan.default_flags.items()))
    return record


def _override_record(override: TenantFlag) -> dict:
    return {
        "enabled": override.enabled,
        "rollout_percent": override.rollout_percent,
        "variant": override.variant or "",
        "value": override.value,
        "owner_variants": list(override.owner_variants or []),
    }


def _owner_toggle_record(toggle: OwnerToggle) -> dict:
    return {"enabled": toggle.enabled, "variant": toggle.variant or ""}


def _layer_records(tenant: Tenant, environment: str) -> dict:
    """Return one environment's overrides and owner toggles, by flag key (from the prefetched rows)."""
    overrides = [o for o in tenant.flag_overrides.all() if o.environment == environment]
    toggles = [t for t in tenant.owner_toggles.all() if t.environment == environment]
    return {
        "overrides": {o.flag.key: _override_record(o) for o in sorted(overrides, key=lambda o: o.flag.key)},
        "owner_toggles": {t.flag.key: _owner_toggle_record(t) for t in sorted(toggles, key=lambda t: t.flag.key)},
    }


def _tenant_record(tenant: Tenant) -> dict:
    return {
        "id": str(tenant.pk),
        "name": tenant.name,
        "plan": tenant.plan.code,
        "status": tenant.status,
        "status_reason": tenant.status_reason,
        "settings": tenant.settings or {},
        "labels": list(tenant.labels or []),
        "upstream_url": tenant.upstream_url,
        **_layer_records(tenant, PRODUCTION),
        "environments": {
            environment.key: {"name": environment.name, **_layer_records(tenant, environment.key)}
            for environment in sorted(tenant.environments.all(), key=lambda e: e.key)
        },
    }


def _tenants():
    return (
        Tenant.objects.select_related("plan")
        .prefetch_related("flag_overrides__flag", "owner_toggles__flag", "environments")
        .order_by("slug")
    )


def _quiet(record: dict) -> dict:
    """Return `record` without the version-2 fields that are at their defaults."""
    return {name: value for name, value in record.items() if not (name in QUIET and value == QUIET[name])}


def _exported_layers(record: dict) -> dict:
    record["overrides"] = {key: _quiet(override) for key, override in record["overrides"].items()}
    # An owner's choice without a variant stays `true | false`, as in version 1.
    record["owner_toggles"] = {
        key: toggle if toggle["variant"] else toggle["enabled"] for key, toggle in record["owner_toggles"].items()
    }
    return record


def _exported_tenant(tenant: Tenant) -> dict:
    record = _exported_layers(_quiet(_tenant_record(tenant)))
    if "environments" in record:
        record["environments"] = {key: _exported_layers(env) for key, env in record["environments"].items()}
    return record


def flags_document_export() -> dict:
    """Return every segment, flag, plan, tenant and override as a version-2 document, sorted by identifier."""
    return {
        "version": DOCUMENT_VERSION,
        "segments": {segment.key: _segment_record(segment) for segment in Segment.objects.order_by("key")},
        "flags": {flag.key: _quiet(_flag_record(flag)) for flag in Flag.objects.order_by("key")},
        "plans": {plan.code: _quiet(_plan_record(plan)) for plan in Plan.objects.order_by("code")},
        "tenants": {tenant.slug: _exported_tenant(tenant) for tenant in _tenants()},
    }


# ---------------------------------------------------------------------------------------------- plan
def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _serve_text(serve: dict) -> str:
    if not serve.get("enabled", True):
        return "off"
    if "variant" in serve:
        return serve["variant"]
    return _json(serve["value"]) if "value" in serve else "on"


def _rule_text(rule: dict) -> str:
    """Return a rule as `eu 40% by tenant -> paid`."""
    text = rule.get("segment") or "everyone"
    if rule.get("percent", 100) < 100:
        text += f" {rule['percent']}%"
    if rule.get("bucket_by") == "tenant":
        text += " by tenant"
    return f"{text} -> {_serve_text(rule.get('serve', {}))}"


# How a diff line shows list fields: one short phrase per item, instead of their JSON.
_FIELD_TEXT: dict[str, Callable[[dict], str]] = {
    "variants": lambda v: f"{v['key']}={_json(v['value'])} {v.get('weight', 0)}%",
    "rules": _rule_text,
    "conditions": lambda c: f"{c['attribute']} {c['op']} {_json(c['values'])}",
}


def _value_text(name: str, value: Any) -> str:
    if name in _FIELD_TEXT and isinstance(value, list):
        return "[" + ", ".join(_FIELD_TEXT[name](item) for item in value) + "]"
    return _json(value)


@dataclass(frozen=True)
class Change:
    """One change an import makes: `op` is + (create), ~ (update) or - (remove or archive)."""

    op: str
    kind: str
    name: str
    fields: dict = field(default_factory=dict)  # name -> (before, after)
    target: dict = field(default_factory=dict)
    #: The environment of an override or owner toggle (production: the tenant's own).
    environment: str = PRODUCTION

    def line(self) -> str:
        """Return the change as one diff line, e.g. `~ plan std: daily_quota 1000 -> 2000`.

        A change in an environment other than production is named by its path
        (`+ override tenants.acme.environments.staging.overrides.beta`).
        """
        in_environment = self.kind == "environment" or self.environment != PRODUCTION
        text = f"{self.op} {self.kind} {self.path() if in_environment else self.name}"
        if self.op == "~" and self.fields:
            text += ": " + ", ".join(
                f"{name} {_value_text(name, before)} -> {_value_text(name, after)}"
                for name, (before, after) in self.fields.items()
            )
        elif self.op == "-" and self.kind == "flag":
            text += ": archived (kept for the audit trail and history)"
        return text

    def path(self) -> str:
        """Return where in the document this change comes from, e.g. `tenants.acme.overrides.beta`."""
        if self.kind == "environment":
            slug, key = self.name.split("/", 1)
            return f"tenants.{slug}.environments.{key}"
        if self.kind in ("override", "owner_toggle"):
            slug, key = self.name.split("/", 1)
            where = "" if self.environment == PRODUCTION else f"environments.{self.environment}."
            return f"tenants.{slug}.{where}{self.kind}s.{key}"
        return f"{self.kind}s.{self.name}"


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


def _upserts(
    kind: str, current: dict, wanted: dict, names, *, prefix: str = "", environment: str = PRODUCTION
) -> list[Change]:
    """Return + changes for what `current` lacks and ~ changes for what differs, by name."""
    changes = []
    for name, record in wanted.items():
        if name not in current:
            changes.append(Change("+", kind, prefix + name, target=record, environment=environment))
        elif fields := _changed(current[name], record, names):
            changes.append(Change("~", kind, prefix + name, fields, record, environment=environment))
    return changes


def _layer_changes(slug: str, current: dict, wanted: dict, *, prune: bool, environment: str) -> list[Change]:
    """Return the override and owner-toggle changes of one environment of a tenant (production included)."""
    where = {"prefix": f"{slug}/", "environment": environment}
    changes = _upserts("override", current["overrides"], wanted["overrides"], OVERRIDE_SPEC, **where)
    changes += _upserts("owner_toggle", current["owner_toggles"], wanted["owner_toggles"], OWNER_TOGGLE_SPEC, **where)
    if prune:
        for kind, layer in (("override", "overrides"), ("owner_toggle", "owner_toggles")):
            changes += [
                Change("-", kind, f"{slug}/{key}", environment=environment)
                for key in current[layer]
                if key not in wanted[layer]
            ]
    return changes


def _environment_changes(slug: str, current: dict, wanted: dict, *, prune: bool) -> tuple[list, list, list]:
    """Return a tenant's environment creates, their layers' changes, and (with prune) its environment deletes."""
    creates, layers, deletes = [], [], []
    for key, environment in wanted.items():
        have = current.get(key)
        if have is None:
            creates.append(Change("+", "environment", f"{slug}/{key}", target=environment))
            have = {"name": environment["name"], "overrides": {}, "owner_toggles": {}}
        elif have["name"] != environment["name"]:
            raise DocumentError(
                f"tenants.{slug}.environments.{key}.name: the database names it “{have['name']}”; flags_import "
                "names an environment only when it creates it, so give that name."
            )
        layers += _layer_changes(slug, have, environment, prune=prune, environment=key)
    for key in current if prune else ():
        if key in wanted:
            continue
        live = ApiKey.objects.filter(tenant__slug=slug, environment=key, revoked_at__isnull=True)
        if live.exists():
            names = ", ".join(sorted(live.values_list("name", flat=True))[:5])
            count = live.count()
            raise DocumentError(
                f"tenants.{slug}.environments.{key}: --prune would delete this environment, which {count} live "
                f"API key{'s' if count != 1 else ''} read ({names}); revoke them first or keep it in the file."
            )
        deletes.append(Change("-", "environment", f"{slug}/{key}"))
    return creates, layers, deletes


def _pruned_segments(doc: dict, segments: dict, flags: dict) -> list[Change]:
    """Return the - changes for segments the document leaves out; refuse one a flag would still use."""
    rules = {key: flag.rules for key, flag in flags.items()} | {key: f["rules"] for key, f in doc["flags"].items()}
    changes = []
    for key in sorted(segments):
        if key in doc["segments"]:
            continue
        users = sorted(flag for flag, flag_rules in rules.items() if any(r.get("segment") == key for r in flag_rules))
        if users:
            raise DocumentError(
                f"segments: --prune would delete segment {key!r}, which the rules of {', '.join(users)} use; "
                "keep it in the file or remove those rules."
            )
        changes.append(Change("-", "segment", key))
    return changes


def flags_document_plan(doc: dict, *, prune: bool = False) -> list[Change]:
    """Return the changes that applying the parsed `doc` would make, in the order they are applied.

    Segments come first (flag rules name them) and are pruned last (after the flags that used them).
    """
    segments = {segment.key: segment for segment in Segment.objects.all()}
    current_segments = {key: _segment_record(s) for key, s in segments.items()}
    changes = _upserts("segment", current_segments, doc["segments"] or {}, SEGMENT_SPEC)
    flags = {flag.key: flag for flag in Flag.objects.all()}
    for key, wanted in doc["flags"].items():
        if key in flags and flags[key].kind != wanted["kind"]:
            raise DocumentError(
                f"flags.{key}.kind: the database's flag {key} is a {flags[key].kind} flag, and a kind is permanent "
                "(clients parse the value by it); define a new flag of the other kind instead."
            )
    changes += _upserts("flag", {key: _flag_record(flag) for key, flag in flags.items()}, doc["flags"], FLAG_SPEC)
    plans = {plan.code: _plan_record(plan) for plan in Plan.objects.all()}
    changes += _upserts("plan", plans, doc["plans"], PLAN_SPEC)

    tenants = {tenant.slug: tenant for tenant in _tenants()}
    environments: list[Change] = []
    overrides: list[Change] = []
    removed_environments: list[Change] = []
    for slug, wanted in doc["tenants"].items():
        current = _tenant_record(tenants[slug]) if slug in tenants else None
        if current is None:
            changes.append(Change("+", "tenant", slug, target=wanted))
        else:
            if wanted["id"] not in (None, current["id"]):
                raise DocumentError(
                    f"tenants.{slug}.id: the database's tenant {slug} has id {current['id']}; a tenant's id is "
                    "permanent (rollouts hash on it), so give that id or leave it out."
                )
            _status_change(slug, current["status"], wanted["status"])
            names = ["name", "plan", "settings", "labels", "upstream_url", "status"]
            if fields := _changed(current, wanted, names):
                changes.append(Change("~", "tenant", slug, fields, wanted))
        current = current or {"overrides": {}, "owner_toggles": {}, "environments": {}}
        overrides += _layer_changes(slug, current, wanted, prune=prune, environment=PRODUCTION)
        creates, layers, deletes = _environment_changes(
            slug, current["environments"], wanted["environments"], prune=prune
        )
        environments += creates
        overrides += layers
        removed_environments += deletes
    # An environment exists before its layers are set; a pruned one takes its layers with it.
    changes += environments + overrides + removed_environments
    if prune:
        changes += [
            Change("-", "flag", key)
            for key, flag in sorted(flags.items())
            if key not in doc["flags"] and not flag.archived
        ]
        if doc["segments"] is not None:
            changes += _pruned_segments(doc, segments, flags)
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
            labels=wanted["labels"],
            upstream_url=wanted["upstream_url"],
            status=serving,
            tenant_id=uuid.UUID(wanted["id"]) if wanted["id"] else None,
            actor=actor,
        )
        current_status = serving
    else:
        tenant = Tenant.objects.get(slug=change.name)
        current_status = tenant.status
        updates = {
            name: wanted[name] for name in ("name", "settings", "labels", "upstream_url") if name in change.fields
        }
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


def _apply_segment(change: Change, actor: Any) -> None:
    wanted = change.target
    if change.op == "+":
        segment_create(key=change.name, actor=actor, **wanted)
    elif change.op == "~":
        segment_update(
            segment=Segment.objects.get(key=change.name), actor=actor, **{n: wanted[n] for n in change.fields}
        )
    else:
        segment_delete(segment=Segment.objects.get(key=change.name), actor=actor)


def _apply_flag(change: Change, actor: Any) -> None:
    wanted = change.target
    if change.op == "+":
        flag = flag_create(key=change.name, actor=actor, **{n: v for n, v in wanted.items() if n != "archived"})
        if wanted["archived"]:
            flag_update(flag=flag, archived=True, actor=actor)
    elif change.op == "~":
        flag_update(flag=Flag.objects.get(key=change.name), actor=actor, **{n: wanted[n] for n in change.fields})
    else:
        flag_update(flag=Flag.objects.get(key=change.name), archived=True, actor=actor)


def _apply(change: Change, actor: Any) -> None:
    wanted = change.target
    if change.kind == "segment":
        _apply_segment(change, actor)
    elif change.kind == "flag":
        _apply_flag(change, actor)
    elif change.kind == "plan":
        if change.op == "+":
            plan_create(code=change.name, actor=actor, **wanted)
        else:
            plan_update(plan=Plan.objects.get(code=change.name), actor=actor, **{n: wanted[n] for n in change.fields})
    elif change.kind == "tenant":
        _apply_tenant(change, actor)
    elif change.kind == "environment":
        slug, key = change.name.split("/", 1)
        tenant = Tenant.objects.get(slug=slug)
        if change.op == "+":
            environment_create(tenant=tenant, key=key, name=wanted["name"], actor=actor)
        else:
            environment_delete(tenant=tenant, key=key, actor=actor)
    else:
        slug, key = change.name.split("/", 1)
        tenant, flag = Tenant.objects.get(slug=slug), Flag.objects.get(key=key)
        environment = change.environment
        if change.kind == "owner_toggle":
            _apply_owner_toggle(change, tenant, flag, actor)
        elif change.op == "-":
            flag_clear_override(tenant=tenant, flag=flag, environment=environment, actor=actor)
        else:
            flag_set_override(tenant=tenant, flag=flag, environment=environment, actor=actor, **wanted)


def _apply_owner_toggle(change: Change, tenant: Tenant, flag: Flag, actor: Any) -> None:
    """Restore or remove a tenant owner's choice (the platform acting on the owners' behalf, audited as such)."""
    if change.op == "-":
        flag_owner_reset(tenant=tenant, flag=flag, environment=change.environment, actor=actor)
    else:
        owner_toggle_restore(tenant=tenant, flag=flag, environment=change.environment, actor=actor, **change.target)


def _at(change: Change, exc: TenantsError) -> DocumentError:
    """Return a service's refusal of a change as a DocumentError naming the document path it came from."""
    message = exc.message
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2 :]
    # An environment's refusals (its key, the plan's bound, live API keys) are about the entry itself.
    suffix = f".{exc.field}" if exc.field and change.kind != "environment" else ""
    return DocumentError(f"{change.path()}{suffix}: {message}")


@transaction.atomic
def flags_document_apply(doc: dict, *, actor: Any, prune: bool = False) -> list[Change]:
    """Apply the parsed `doc` in one transaction through the services (one audit row per change); return the changes."""
    changes = flags_document_plan(doc, prune=prune)
    for change in changes:
        try:
            _apply(change, actor)
        except DocumentError:
            raise
        except TenantsError as exc:
            raise _at(change, exc) from exc
    return changes
