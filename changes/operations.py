"""The changes a change request may carry: one `Operation` per tenants service, keyed by its audit action.

Each operation validates natural-key params (naming the field at fault), reads the state the
change touches (for the before/after view and the inverse), applies itself through the tenants
service with the author as actor, and says which params would restore the state it found.
Operations never write models themselves: every write is the service's, audited as usual.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit.models import AuditAction
from audit.services import audit_snapshot
from changes.exceptions import InvalidChange
from tenants.models import ENVIRONMENT_KEY_PATTERN, PRODUCTION, Flag, OwnerToggle, Tenant, TenantFlag
from tenants.services import environments as environment_services
from tenants.services import flags as flag_services

CHANGE_FLAG = "tenants.change_flag"
CHANGE_TENANT = "tenants.change_tenant"
BOOLEAN_FLAG_FIELDS = {"default", "tenant_editable", "risky", "archived", "requires_approval"}


@dataclass(frozen=True)
class Target:
    """The rows a change request's params name."""

    flag: Flag | None
    tenant: Tenant | None = None

    @property
    def scoped_flag(self) -> Flag:
        """Return the flag of a flag-scoped change (`Operation.resolve` always finds one for those)."""
        if self.flag is None:
            raise InvalidChange("flag: required for this change.", field="flag")
        return self.flag

    @property
    def scoped_tenant(self) -> Tenant:
        """Return the tenant of a tenant-scoped change (`Operation.resolve` always finds one for those)."""
        if self.tenant is None:
            raise InvalidChange("tenant: required for this change.", field="tenant")
        return self.tenant


@dataclass(frozen=True)
class Operation:
    """One kind of change: how to check, read, apply and undo it."""

    name: str
    label: str
    #: Whether params name a tenant (`params["tenant"]`, its slug).
    tenant_scoped: bool
    #: The Django permission an author needs, or None when the service checks the author itself.
    permission: str | None
    #: Whether a flag's `requires_approval` applies (owners' own toggles are bounded by the override instead).
    needs_approval_of_flag: bool
    clean: Callable[[dict], dict]
    state: Callable[[Target, dict], dict | None]
    apply: Callable[[Target, dict, Any], None]
    #: (operation, params) restoring `before` (the state just before applying), or None if nothing to restore.
    inverse: Callable[[Target, dict, dict | None], tuple[str, dict] | None]
    describe: Callable[[dict], str]
    #: The state the change leaves (what `state` would read after it), None for "no row".
    outcome: Callable[[dict], dict | None] = lambda _params: None
    #: Whether params name one flag (`params["flag"]`); a promotion names an environment pair instead.
    flag_scoped: bool = True
    #: The keys of the flags whose `requires_approval` the change touches (default: its one flag's).
    gated_flags: Callable[[Target, dict], list[str]] | None = None
    #: The flag a request is filed under (default: its one flag).
    flag_key: Callable[[Target, dict], str] | None = None
    #: Whether a `revert_at` may put the change back (with `inverse`).
    revertible: bool = True

    def resolve(self, params: dict) -> Target:
        """Return the rows `params` name; raise InvalidChange naming the field that names none."""
        flag = None
        if self.flag_scoped:
            key = params.get("flag")
            flag = Flag.objects.filter(key=key).first() if isinstance(key, str) else None
            if flag is None:
                raise InvalidChange(f"flag: there is no flag with key {key!r}.", field="flag")
        if not self.tenant_scoped:
            return Target(flag=flag)
        slug = params.get("tenant")
        tenant = Tenant.objects.filter(slug=slug).first() if isinstance(slug, str) else None
        if tenant is None:
            raise InvalidChange(f"tenant: there is no tenant with slug {slug!r}.", field="tenant")
        return Target(flag=flag, tenant=tenant)

    def approval_flags(self, target: Target, params: dict) -> list[str]:
        """Return the keys of the flags that make this change need another staff user's approval."""
        if self.gated_flags is not None:
            return self.gated_flags(target, params)
        flag = target.scoped_flag
        return [flag.key] if self.needs_approval_of_flag and flag.requires_approval else []

    def filed_under(self, target: Target, params: dict) -> str:
        """Return the flag key the request is listed under (its filters, a flag's "Scheduled changes")."""
        return self.flag_key(target, params) if self.flag_key is not None else target.scoped_flag.key


# ------------------------------------------------------------------------ helpers
def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _keys(params: dict, *, required: set[str], optional: set[str] | frozenset[str] = frozenset()) -> dict:
    """Return params with only known keys; raise InvalidChange naming a missing or unknown one."""
    if not isinstance(params, dict):
        raise InvalidChange("params: send an object of the change's values.", field="params")
    for name in sorted(required):
        if name not in params:
            raise InvalidChange(f"{name}: required for this change.", field=name)
    unknown = sorted(set(params) - required - optional)
    if unknown:
        known = ", ".join(sorted(required | optional))
        raise InvalidChange(f"{unknown[0]}: not a value of this change (known: {known}).", field=unknown[0])
    return dict(params)


def _boolean(params: dict, name: str) -> None:
    if not isinstance(params.get(name), bool):
        raise InvalidChange(f"{name}: use true or false.", field=name)


def _environment(params: dict) -> str:
    """Return the change's environment (default production); raise InvalidChange naming `environment`."""
    environment = params.get("environment", PRODUCTION)
    if not isinstance(environment, str) or not re.match(ENVIRONMENT_KEY_PATTERN, environment):
        raise InvalidChange(
            f"environment: {json.dumps(environment)} is not an environment key (e.g. production, staging).",
            field="environment",
        )
    return environment


def _in(params: dict) -> dict:
    """Return the `environment` param of a change, left out for production (so older requests read the same)."""
    environment = params.get("environment", PRODUCTION)
    return {} if environment == PRODUCTION else {"environment": environment}


def _set_override_options() -> set[str]:
    """The values flag_set_override takes besides its rows and actor (the typed ones as the service grows)."""
    names = set(inspect.signature(flag_services.flag_set_override).parameters)
    return names - {"tenant", "flag", "actor", "ip", "approved", "source"}


def _override_state(target: Target, params: dict) -> dict | None:
    override = TenantFlag.objects.filter(
        tenant=target.scoped_tenant, environment=_environment(params), flag=target.scoped_flag
    ).first()
    if override is None:
        return None
    # The environment names the row, as the tenant and flag do: it is in the params, not the state.
    fields = [name for name in sorted(_set_override_options()) if hasattr(TenantFlag, name) and name != "environment"]
    return audit_snapshot(override, fields)


def _toggle_state(target: Target, params: dict) -> dict | None:
    toggle = OwnerToggle.objects.filter(
        tenant=target.scoped_tenant, environment=_environment(params), flag=target.scoped_flag
    ).first()
    if toggle is None:
        return None
    return {"enabled": toggle.enabled, **({"variant": toggle.variant} if toggle.variant else {})}


def _row(params: dict) -> dict:
    """Return the params naming the row a change touches: flag, tenant and (unless production) environment."""
    return {"flag": params["flag"], "tenant": params["tenant"], **_in(params)}


def _where(params: dict) -> str:
    environment = params.get("environment", PRODUCTION)
    suffix = "" if environment == PRODUCTION else f" in {environment}"
    return f"“{params['flag']}” for {params['tenant']}{suffix}"


# ---------------------------------------------------------------------- flag.update
def _update_clean(params: dict) -> dict:
    params = _keys(params, required={"flag", "fields"})
    fields = params["fields"]
    if not isinstance(fields, dict) or not fields:
        raise InvalidChange("fields: name at least one field and its new value.", field="fields")
    for name, value in fields.items():
        if name not in flag_services.UPDATABLE_FLAG_FIELDS:
            known = ", ".join(sorted(flag_services.UPDATABLE_FLAG_FIELDS))
            raise InvalidChange(
                f"fields.{name}: not a field a change can set (one of {known}).", field=f"fields.{name}"
            )
        if name in BOOLEAN_FLAG_FIELDS and not isinstance(value, bool):
            raise InvalidChange(f"fields.{name}: use true or false.", field=f"fields.{name}")
    return params


def _update_state(target: Target, params: dict) -> dict:
    return audit_snapshot(target.scoped_flag, sorted(params["fields"]))


def _update_apply(target: Target, params: dict, actor) -> None:
    flag_services.flag_update(flag=target.scoped_flag, actor=actor, approved=True, **params["fields"])


def _update_inverse(target: Target, params: dict, before: dict | None):
    return AuditAction.FLAG_UPDATE.value, {"flag": params["flag"], "fields": before}


def _update_describe(params: dict) -> str:
    changes = ", ".join(f"{name} → {_shown(value)}" for name, value in sorted(params["fields"].items()))
    return f"Change flag “{params['flag']}”: {changes}"


# ---------------------------------------------------------------- flag.set_override
def _set_override_clean(params: dict) -> dict:
    params = _keys(params, required={"flag", "tenant", "enabled"}, optional=_set_override_options() - {"enabled"})
    _boolean(params, "enabled")
    _environment(params)
    percent = params.get("rollout_percent", 100)
    if type(percent) is not int or not 0 <= percent <= 100:
        raise InvalidChange("rollout_percent: a whole number from 0 to 100.", field="rollout_percent")
    return params


def _values(params: dict) -> dict:
    return {name: value for name, value in params.items() if name not in ("flag", "tenant")}


def _set_override_apply(target: Target, params: dict, actor) -> None:
    flag_services.flag_set_override(
        tenant=target.scoped_tenant, flag=target.scoped_flag, actor=actor, approved=True, **_values(params)
    )


def _override_inverse(target: Target, params: dict, before: dict | None):
    where = _row(params)
    if before is None:
        return AuditAction.FLAG_CLEAR_OVERRIDE.value, where
    return AuditAction.FLAG_SET_OVERRIDE.value, {**where, **before}


def _set_override_describe(params: dict) -> str:
    state = "on" if params["enabled"] else "off"
    percent = params.get("rollout_percent", 100)
    extra = "".join(
        f", {name} {_shown(value)}"
        for name, value in sorted(params.items())
        if name not in ("flag", "tenant", "environment", "enabled", "rollout_percent")
    )
    return f"Override {_where(params)}: {state}" + (f" at {percent} %" if params["enabled"] else "") + extra


# -------------------------------------------------------------- flag.clear_override
def _clear_clean(params: dict) -> dict:
    params = _keys(params, required={"flag", "tenant"}, optional={"environment"})
    _environment(params)
    return params


def _clear_apply(target: Target, params: dict, actor) -> None:
    flag_services.flag_clear_override(
        tenant=target.scoped_tenant,
        flag=target.scoped_flag,
        environment=_environment(params),
        actor=actor,
        approved=True,
    )


def _clear_inverse(target: Target, params: dict, before: dict | None):
    if before is None:
        return None  # there was no override: nothing to put back
    return AuditAction.FLAG_SET_OVERRIDE.value, {**_row(params), **before}


# ---------------------------------------------------------------- flag.owner_toggle
def _toggle_clean(params: dict) -> dict:
    params = _keys(params, required={"flag", "tenant", "enabled"}, optional={"on_behalf", "variant", "environment"})
    _boolean(params, "enabled")
    _environment(params)
    if "on_behalf" in params:
        _boolean(params, "on_behalf")
    if not isinstance(params.get("variant", ""), str):
        raise InvalidChange("variant: the key of a variant owners may pick.", field="variant")
    return params


def _toggle_apply(target: Target, params: dict, actor) -> None:
    if params.get("on_behalf"):
        # A staff change putting back an owner's choice (the inverse of a reset): not the owner's own toggle.
        flag_services.owner_toggle_restore(
            tenant=target.scoped_tenant,
            flag=target.scoped_flag,
            enabled=params["enabled"],
            environment=_environment(params),
            actor=actor,
        )
    else:
        flag_services.flag_owner_toggle(
            tenant=target.scoped_tenant,
            flag=target.scoped_flag,
            enabled=params["enabled"],
            variant=params.get("variant", ""),
            environment=_environment(params),
            actor=actor,
        )


def _toggle_inverse(target: Target, params: dict, before: dict | None):
    where = _row(params)
    if before is None:
        return AuditAction.FLAG_OWNER_RESET.value, where
    return AuditAction.FLAG_OWNER_TOGGLE.value, {**where, **before, **_behalf(params)}


def _behalf(params: dict) -> dict:
    return {"on_behalf": True} if params.get("on_behalf") else {}


def _toggle_describe(params: dict) -> str:
    who = "on the owners' behalf" if params.get("on_behalf") else "owner toggle"
    return f"Turn {_where(params)} {'on' if params['enabled'] else 'off'} ({who})"


# ----------------------------------------------------------------- flag.owner_reset
def _reset_apply(target: Target, params: dict, actor) -> None:
    flag_services.flag_owner_reset(
        tenant=target.scoped_tenant,
        flag=target.scoped_flag,
        environment=_environment(params),
        actor=actor,
        approved=True,
    )


def _reset_inverse(target: Target, params: dict, before: dict | None):
    if before is None:
        return None
    return AuditAction.FLAG_OWNER_TOGGLE.value, {**_row(params), "enabled": before["enabled"], "on_behalf": True}


# ------------------------------------------------------------ environment.promote
LAYER_PERMISSIONS = {environment_services.OVERRIDES: CHANGE_FLAG, environment_services.OWNER_TOGGLES: CHANGE_TENANT}


def _promote_clean(params: dict) -> dict:
    params = _keys(params, required={"tenant", "source", "target"}, optional={"layers", "digest"})
    for name in ("source", "target"):
        if not isinstance(params[name], str) or not params[name]:
            raise InvalidChange(f"{name}: the key of one of the tenant's environments.", field=name)
    if "digest" in params and not (
        isinstance(params["digest"], str) and re.fullmatch(r"[0-9a-f]{16}", params["digest"])
    ):
        raise InvalidChange("digest: the 16 hex digits of the reviewed diff's digest.", field="digest")
    if "layers" in params:
        layers = params["layers"]
        known = environment_services.LAYERS
        if not isinstance(layers, list) or not layers or any(layer not in known for layer in layers):
            raise InvalidChange(f"layers: a list of one or both of {', '.join(known)}.", field="layers")
    return params


def _promote_layers(params: dict) -> tuple[str, ...]:
    chosen = params.get("layers") or environment_services.LAYERS
    return tuple(layer for layer in environment_services.LAYERS if layer in chosen)


def _promote_diff(tenant: Tenant, params: dict) -> environment_services.EnvironmentDiff:
    return environment_services.environment_diff(
        tenant=tenant, source=params["source"], target=params["target"], layers=_promote_layers(params)
    )


def _layers_of(tenant: Tenant, environment: str, layers: tuple[str, ...]) -> dict:
    """Return an environment's flag layers as the override and toggle operations read one row."""
    fields = [name for name in sorted(_set_override_options()) if hasattr(TenantFlag, name) and name != "environment"]
    state: dict[str, dict] = {}
    if environment_services.OVERRIDES in layers:
        rows = TenantFlag.objects.filter(tenant=tenant, environment=environment).select_related("flag")
        state[environment_services.OVERRIDES] = {
            row.flag.key: audit_snapshot(row, fields) for row in sorted(rows, key=lambda row: row.flag.key)
        }
    if environment_services.OWNER_TOGGLES in layers:
        toggles = OwnerToggle.objects.filter(tenant=tenant, environment=environment).select_related("flag")
        state[environment_services.OWNER_TOGGLES] = {
            row.flag.key: {"enabled": row.enabled, **({"variant": row.variant} if row.variant else {})}
            for row in sorted(toggles, key=lambda row: row.flag.key)
        }
    return state


def _promote_state(target: Target, params: dict) -> dict:
    return _layers_of(target.scoped_tenant, params["target"], _promote_layers(params))


def _promote_outcome(params: dict) -> dict | None:
    tenant = Tenant.objects.filter(slug=params.get("tenant")).first()
    return None if tenant is None else _layers_of(tenant, params["source"], _promote_layers(params))


def _promote_apply(target: Target, params: dict, actor) -> None:
    # With a digest (a promotion someone reviewed, then sent for approval) exactly that diff applies, or the
    # request fails; without one, the diff of the moment it applies (the target ends up as the source is then).
    digest = params.get("digest") or _promote_diff(target.scoped_tenant, params).digest
    environment_services.environment_promote(
        tenant=target.scoped_tenant,
        source=params["source"],
        target=params["target"],
        layers=_promote_layers(params),
        digest=digest,
        actor=actor,
        approved=True,
    )


def _promote_gated(target: Target, params: dict) -> list[str]:
    # As environment_promote: only the platform's overrides of a gated flag need approval, not owners' toggles.
    changes = _promote_diff(target.scoped_tenant, params).changes
    keys = sorted({change.flag for change in changes if change.layer == environment_services.OVERRIDES})
    return list(Flag.objects.filter(key__in=keys, requires_approval=True).order_by("key").values_list("key", flat=True))


def _promote_flag_key(target: Target, params: dict) -> str:
    gated = _promote_gated(target, params)
    changed = [change.flag for change in _promote_diff(target.scoped_tenant, params).changes]
    return (gated or changed or [""])[0]


def _promote_describe(params: dict) -> str:
    text = f"Promote {params['source']} → {params['target']} for {params['tenant']}"
    tenant = Tenant.objects.filter(slug=params["tenant"]).first()
    if tenant is None:
        return text
    count = len(_promote_diff(tenant, params).changes)
    layers = _promote_layers(params)
    only = "" if len(layers) == len(environment_services.LAYERS) else ", " + layers[0].replace("_", " ")
    return f"{text} ({count} change{'' if count == 1 else 's'}{only})"


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            name=AuditAction.FLAG_UPDATE.value,
            label="Change a flag",
            tenant_scoped=False,
            permission=CHANGE_FLAG,
            needs_approval_of_flag=True,
            clean=_update_clean,
            state=_update_state,
            apply=_update_apply,
            inverse=_update_inverse,
            describe=_update_describe,
            outcome=lambda params: dict(params["fields"]),
        ),
        Operation(
            name=AuditAction.FLAG_SET_OVERRIDE.value,
            label="Set a tenant's override",
            tenant_scoped=True,
            permission=CHANGE_FLAG,
            needs_approval_of_flag=True,
            clean=_set_override_clean,
            state=_override_state,
            apply=_set_override_apply,
            inverse=_override_inverse,
            describe=_set_override_describe,
            outcome=lambda params: {
                "rollout_percent": 100,
                **{name: value for name, value in _values(params).items() if name != "environment"},
            },
        ),
        Operation(
            name=AuditAction.FLAG_CLEAR_OVERRIDE.value,
            label="Clear a tenant's override",
            tenant_scoped=True,
            permission=CHANGE_FLAG,
            needs_approval_of_flag=True,
            clean=_clear_clean,
            state=_override_state,
            apply=_clear_apply,
            inverse=_clear_inverse,
            describe=lambda params: f"Clear the override {_where(params)}",
        ),
        Operation(
            name=AuditAction.FLAG_OWNER_TOGGLE.value,
            label="Owner toggle",
            tenant_scoped=True,
            # The service checks the author is an owner or admin of the tenant; on_behalf needs CHANGE_TENANT.
            permission=None,
            needs_approval_of_flag=False,
            clean=_toggle_clean,
            state=_toggle_state,
            apply=_toggle_apply,
            inverse=_toggle_inverse,
            describe=_toggle_describe,
            outcome=lambda params: {name: params[name] for name in ("enabled", "variant") if name in params},
        ),
        Operation(
            name=AuditAction.FLAG_OWNER_RESET.value,
            label="Reset the owner's toggle",
            tenant_scoped=True,
            permission=CHANGE_TENANT,
            needs_approval_of_flag=True,
            clean=_clear_clean,
            state=_toggle_state,
            apply=_reset_apply,
            inverse=_reset_inverse,
            describe=lambda params: f"Reset the owner's toggle of {_where(params)}",
        ),
        Operation(
            name=AuditAction.ENVIRONMENT_PROMOTE.value,
            label="Promote an environment",
            tenant_scoped=True,
            flag_scoped=False,
            # Per layer (operation_permissions): overrides need CHANGE_FLAG, owner toggles CHANGE_TENANT.
            permission=None,
            needs_approval_of_flag=True,
            clean=_promote_clean,
            state=_promote_state,
            apply=_promote_apply,
            # Promoting back would copy what the source is then, not what the target was: no automatic revert.
            inverse=lambda _target, _params, _before: None,
            describe=_promote_describe,
            outcome=_promote_outcome,
            gated_flags=_promote_gated,
            flag_key=_promote_flag_key,
            revertible=False,
        ),
    )
}


def operation_named(name: str) -> Operation:
    """Return the operation called `name`; raise InvalidChange listing the known ones."""
    try:
        return OPERATIONS[name]
    except (KeyError, TypeError):
        raise InvalidChange(
            f"operation: {name!r} is not a change this app makes (one of {', '.join(OPERATIONS)}).", field="operation"
        ) from None


def operation_permissions(operation: Operation, params: dict) -> tuple[str, ...]:
    """Return the permissions the author of this change needs (none: the service checks the author)."""
    if operation.name == AuditAction.FLAG_OWNER_TOGGLE and params.get("on_behalf"):
        return (CHANGE_TENANT,)
    if operation.name == AuditAction.ENVIRONMENT_PROMOTE:
        return tuple(LAYER_PERMISSIONS[layer] for layer in _promote_layers(params))
    return () if operation.permission is None else (operation.permission,)
