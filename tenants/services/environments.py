"""Writes for a tenant's environments: add, delete, and promote one environment's flag layers onto another.

Every tenant has `production` (no row). Others are `Environment` rows, as many as the plan
allows. Overrides and owner toggles belong to one environment; promoting copies the
source's onto the target (set, change or remove, so the target ends up as the source) in
one transaction and one audit event, after the caller has seen the diff: the caller passes
the diff's digest, and a promotion whose diff changed since is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from tenants.cache import versions_bump
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.models import (
    ENVIRONMENT_KEY_PATTERN,
    PRODUCTION,
    ApiKey,
    Environment,
    Flag,
    OwnerToggle,
    Tenant,
    TenantFlag,
)

#: What a promotion may copy: the platform's overrides and the owners' toggles.
OVERRIDES = "overrides"
OWNER_TOGGLES = "owner_toggles"
LAYERS = (OVERRIDES, OWNER_TOGGLES)


class EnvironmentChanged(TenantsError):
    default_message = "The environments changed since this diff was shown: review the new diff and promote again."


def environment_require(tenant: Tenant, key: Any, *, field: str = "environment", lock: bool = False) -> str:
    """Return `key` if it names one of the tenant's environments; raise TenantsError naming `field` otherwise.

    `lock` (inside a transaction) holds the tenant's row, then the environment's, until commit: a
    concurrent `environment_delete` waits for the write and then finds it, or the write finds no
    environment. The tenant comes first for every writer of its flag layers (the version bump at the
    end of each write locks it anyway), so two writers never wait for each other's locks.
    """
    if lock:
        Tenant.objects.select_for_update().filter(pk=tenant.pk).exists()
    if key == PRODUCTION:
        return PRODUCTION
    # Only a well-formed key reaches the database (a NUL character or 10 kB of text never does).
    if isinstance(key, str) and re.match(ENVIRONMENT_KEY_PATTERN, key):
        rows = Environment.objects.filter(tenant=tenant, key=key)
        if (rows.select_for_update() if lock else rows).exists():
            return key
    if isinstance(key, str) and len(key) > 40:
        key = key[:40] + "…"
    known = ", ".join([PRODUCTION, *Environment.objects.filter(tenant=tenant).values_list("key", flat=True)])
    raise TenantsError(f"{field}: “{tenant.slug}” has no environment {key!r} (it has: {known}).", field=field)


@transaction.atomic
def environment_create(*, tenant: Tenant, key: str, actor: Any, name: str = "", ip: str | None = None) -> Environment:
    """Add an environment to a tenant, within its plan's bound; audited."""
    key = (key or "").strip()
    if not re.match(ENVIRONMENT_KEY_PATTERN, key):
        raise TenantsError(
            "key: use 1-32 characters: a-z, 0-9, '-', starting with a letter (e.g. staging).", field="key"
        )
    if key == PRODUCTION:
        raise TenantsError("key: every tenant has production already.", field="key")
    name = (name or "").strip()
    if len(name) > 100:
        raise TenantsError("name: at most 100 characters.", field="name")
    # The tenant row is the lock: two concurrent adds cannot both pass the plan's bound.
    locked = Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)
    if Environment.objects.filter(tenant=locked, key=key).exists():
        raise TenantsError(f"key: “{locked.slug}” has an environment {key!r} already.", field="key")
    allowed = locked.plan.max_environments
    count = 1 + Environment.objects.filter(tenant=locked).count()
    if count >= allowed:
        raise TenantsError(
            f"key: plan “{locked.plan.code}” allows {allowed} environment{'s' if allowed != 1 else ''} "
            f"(production included) and “{locked.slug}” has {count}: delete one or move to a larger plan.",
            field="key",
        )
    environment = Environment.objects.create(
        tenant=locked,
        key=key,
        name=name,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_CREATE,
        tenant=locked,
        obj=environment,
        object_id=key,
        after={"key": key, "name": name},
        ip=ip,
    )
    return environment


@transaction.atomic
def environment_delete(
    *, tenant: Tenant, key: str, actor: Any, may_remove_overrides: bool = True, ip: str | None = None
) -> None:
    """Delete an environment with its overrides and owner toggles; refused while live API keys read it.

    The platform's overrides go with it only for a caller who may remove them (`may_remove_overrides`:
    not a tenant owner, not staff without the flag permission), and never an override of a flag that
    requires approval (clear those through change requests first).
    """
    if key == PRODUCTION:
        raise TenantsError("environment: production cannot be deleted.", field="environment")
    environment_require(tenant, key, lock=True)  # raises, naming what exists
    environment = Environment.objects.select_for_update().get(tenant=tenant, key=key)
    live = ApiKey.objects.filter(tenant=tenant, environment=key, revoked_at__isnull=True)
    if live.exists():
        names = ", ".join(sorted(live.values_list("name", flat=True))[:5])
        raise TenantsError(
            f"environment: revoke its API keys first ({live.count()} live: {names}); "
            "a key whose environment is gone would answer with no overrides or owner toggles at all.",
            field="environment",
        )
    overrides = TenantFlag.objects.filter(tenant=tenant, environment=key)
    toggles = OwnerToggle.objects.filter(tenant=tenant, environment=key)
    if not may_remove_overrides and overrides.exists():
        raise TenantsError(
            f"environment: the platform team has set overrides in {key} "
            f"({', '.join(sorted(overrides.values_list('flag__key', flat=True))[:5])}); "
            "only they can remove them: ask them to clear those overrides or delete the environment.",
            field="environment",
        )
    gated = sorted(overrides.filter(flag__requires_approval=True).values_list("flag__key", flat=True))
    if gated:
        raise TenantsError(
            f"environment: {key} holds overrides of flags that require approval ({', '.join(gated)}): "
            "clear them through change requests first.",
            field="environment",
        )
    before = {
        "key": key,
        "name": environment.name,
        "overrides": sorted(overrides.values_list("flag__key", flat=True)),
        "owner_toggles": sorted(toggles.values_list("flag__key", flat=True)),
    }
    overrides.delete()
    toggles.delete()
    environment.delete()
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_DELETE,
        tenant=tenant,
        object_type="tenants.environment",
        object_id=key,
        before=before,
        ip=ip,
    )


# ------------------------------------------------------------------ promotion
def _override_state(row: TenantFlag) -> dict:
    state: dict[str, Any] = {"enabled": row.enabled, "rollout_percent": row.rollout_percent}
    if row.variant:
        state["variant"] = row.variant
    if row.value is not None:
        state["value"] = row.value
    if row.owner_variants:
        state["owner_variants"] = list(row.owner_variants)
    return state


def _toggle_state(row: OwnerToggle) -> dict:
    return {"enabled": row.enabled, **({"variant": row.variant} if row.variant else {})}


@dataclass(frozen=True)
class LayerChange:
    """One flag layer a promotion changes in the target: `before` is the target's, `after` the source's."""

    flag: str
    layer: str  # overrides | owner_toggles
    before: dict | None
    after: dict | None

    @property
    def verb(self) -> str:
        if self.before is None:
            return "add"
        return "remove" if self.after is None else "change"

    def as_dict(self) -> dict:
        return {"flag": self.flag, "layer": self.layer, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class EnvironmentDiff:
    """What promoting `source` onto `target` would change, and a digest the promotion must be given back."""

    tenant: str
    source: str
    target: str
    layers: tuple[str, ...]
    changes: tuple[LayerChange, ...]

    @property
    def digest(self) -> str:
        body = json.dumps(
            [self.tenant, self.source, self.target, list(self.layers), [c.as_dict() for c in self.changes]],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "source": self.source,
            "target": self.target,
            "layers": list(self.layers),
            "digest": self.digest,
            "changes": [c.as_dict() for c in self.changes],
        }


def _layers(layers: Any) -> tuple[str, ...]:
    chosen = tuple(layers) if layers else LAYERS
    unknown = sorted(set(chosen) - set(LAYERS))
    if unknown:
        raise TenantsError(f"layers: unknown {', '.join(unknown)} (use {', '.join(LAYERS)}).", field="layers")
    return tuple(layer for layer in LAYERS if layer in chosen)


def _rows(model, tenant: Tenant, environment: str, *, lock: bool) -> dict:
    rows = model.objects.filter(tenant=tenant, environment=environment).select_related("flag")
    if lock:
        rows = rows.select_for_update()
    return {row.flag.key: row for row in rows}


def _diff(tenant: Tenant, source: str, target: str, layers: tuple[str, ...], *, lock: bool = False) -> EnvironmentDiff:
    changes: list[LayerChange] = []
    for layer, model, state in ((OVERRIDES, TenantFlag, _override_state), (OWNER_TOGGLES, OwnerToggle, _toggle_state)):
        if layer not in layers:
            continue
        have, want = _rows(model, tenant, target, lock=lock), _rows(model, tenant, source, lock=lock)
        for key in sorted(set(have) | set(want)):
            before = state(have[key]) if key in have else None
            after = state(want[key]) if key in want else None
            if before != after:
                changes.append(LayerChange(key, layer, before, after))
    return EnvironmentDiff(tenant.slug, source, target, layers, tuple(changes))


def _copy(tenant: Tenant, target: str, flag: Flag, change: LayerChange, actor: Any) -> None:
    """Write one layer of the target as `change.after` says (None: remove it)."""
    where = {"tenant": tenant, "environment": target, "flag": flag}
    by = actor if getattr(actor, "is_authenticated", False) else None
    after = change.after
    if change.layer == OVERRIDES:
        if after is None:
            TenantFlag.objects.filter(**where).delete()
            return
        override = TenantFlag.objects.filter(**where).first() or TenantFlag(**where)
        override.enabled, override.rollout_percent = after["enabled"], after["rollout_percent"]
        override.variant, override.value = after.get("variant", ""), after.get("value")
        override.owner_variants, override.source = after.get("owner_variants", []), TenantFlag.Source.ADMIN
        override.updated_by = by
        override.save()
        return
    if after is None:
        OwnerToggle.objects.filter(**where).delete()
        return
    toggle = OwnerToggle.objects.filter(**where).first() or OwnerToggle(**where)
    toggle.enabled, toggle.variant, toggle.updated_by = after["enabled"], after.get("variant", ""), by
    toggle.save()


def _check_pair(tenant: Tenant, source: Any, target: Any, *, lock: bool = False) -> tuple[str, str]:
    source = environment_require(tenant, source, field="source", lock=lock)
    target = environment_require(tenant, target, field="target", lock=lock)
    if source == target:
        raise TenantsError("target: pick an environment other than the source.", field="target")
    return source, target


def environment_diff(*, tenant: Tenant, source: str, target: str, layers: Any = LAYERS) -> EnvironmentDiff:
    """Return what promoting `source` onto `target` would change (nothing is written)."""
    source, target = _check_pair(tenant, source, target)
    return _diff(tenant, source, target, _layers(layers))


@transaction.atomic
def environment_promote(
    *,
    tenant: Tenant,
    source: str,
    target: str,
    digest: str,
    actor: Any,
    layers: Any = LAYERS,
    approved: bool = False,
    ip: str | None = None,
) -> EnvironmentDiff:
    """Make `target`'s flag layers equal `source`'s, as the diff with `digest` showed; one audit event.

    Raise EnvironmentChanged when the diff is no longer the one reviewed, and ApprovalRequired
    when it touches a flag that requires approval (unless `approved`).
    """
    layers = _layers(layers)
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()  # one promotion of a tenant at a time
    source, target = _check_pair(tenant, source, target, lock=True)  # neither is deleted meanwhile
    diff = _diff(tenant, source, target, layers, lock=True)
    if digest != diff.digest:
        raise EnvironmentChanged(field="digest")
    if not diff.changes:
        return diff
    keys = sorted({c.flag for c in diff.changes})
    flags = {flag.key: flag for flag in Flag.objects.filter(key__in=keys)}
    # Only the platform's overrides need approval: owners' toggles of a gated flag never do.
    gated = sorted({c.flag for c in diff.changes if c.layer == OVERRIDES and flags[c.flag].requires_approval})
    if gated and not approved:
        raise ApprovalRequired(
            f"{', '.join(gated)} require{'s' if len(gated) == 1 else ''} approval: this promotion must be a change "
            "request another staff user approves.",
            operation=AuditAction.ENVIRONMENT_PROMOTE,
            # The reviewed diff's digest: an approved request applies exactly this diff, or fails.
            params={
                "tenant": tenant.slug,
                "source": source,
                "target": target,
                "layers": list(layers),
                "digest": diff.digest,
            },
        )
    for change in diff.changes:
        _copy(tenant, target, flags[change.flag], change, actor)
    # A removed layer leaves no time of its own: the tenant's moves, as for any removal (flag entry versions).
    Tenant.objects.filter(pk=tenant.pk).update(updated_at=timezone.now())
    versions_bump([tenant.pk])
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_PROMOTE,
        tenant=tenant,
        object_type="tenants.environment",
        object_id=target,
        before={f"{c.layer}.{c.flag}": c.before for c in diff.changes},
        after={f"{c.layer}.{c.flag}": c.after for c in diff.changes},
        reason=f"promoted {source} to {target}",
        ip=ip,
    )
    return diff
