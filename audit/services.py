"""The audit trail: every service writes one row in the same transaction as its change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.db import models
from django.utils.module_loading import import_string

from audit.models import AuditEvent

# How the actor acted when it was not in person (e.g. "staff token sat_1a2b3c4d"); appended to each reason.
_VIA: ContextVar[str] = ContextVar("audit_via", default="")


@contextmanager
def audit_via(provenance: str) -> Iterator[None]:
    """Record `provenance` in the reason of every audit row written inside the block (`… [via <provenance>]`)."""
    token = _VIA.set(provenance)
    try:
        yield
    finally:
        _VIA.reset(token)


def audit_record(
    *,
    actor: Any,
    action: str,
    tenant: models.Model | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEvent:
    """Append an audit event; `actor` is a user, an ApiKey, or None for the system."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    # The API-key model is the one the actor_api_key column points at; audit imports no app to name it.
    # Any: a resolved foreign key's model class (the stub also allows the unresolved "self" and None).
    api_key_model: Any = AuditEvent._meta.get_field("actor_api_key").related_model
    api_key = actor if isinstance(actor, api_key_model) else None
    if user is not None:
        label = user.get_username()
    elif api_key is not None:
        label = f"api-key:{api_key.prefix}"
    else:
        label = "system"
    via = _VIA.get()
    if via:
        suffix = f"[via {via}]"
        reason = f"{reason[: 500 - len(suffix) - 1]} {suffix}" if reason else suffix
    # tenant is typed as any model: audit sits below the tenants app and imports none of its models.
    event = AuditEvent.objects.create(  # type: ignore[misc]
        actor_user=user,
        actor_api_key=api_key,
        actor_label=label,
        tenant=tenant,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        reason=reason[:500],
        ip=ip,
    )
    for receiver in audit_receivers():
        receiver(event)  # in the caller's transaction: a projection commits or rolls back with the change
    return event


@cache
def audit_receivers() -> tuple:
    """Return the functions named in settings.AUDIT_RECEIVERS, each called with every new audit row."""
    return tuple(import_string(path) for path in getattr(settings, "AUDIT_RECEIVERS", ()))


def audit_snapshot(obj: models.Model, fields: list[str]) -> dict:
    """Return a JSON-safe dict of `fields` of `obj` for an audit before/after."""
    snap = {}
    for name in fields:
        field = cast(models.Field, obj._meta.get_field(name))  # `fields` names concrete fields
        value = getattr(obj, field.attname)
        if value is None or isinstance(value, bool | int | float | str | list | dict):
            snap[name] = value
        else:
            snap[name] = str(value)
    return snap
