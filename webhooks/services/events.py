"""Events: a change becomes one event row and one delivery per subscribed endpoint, in its transaction.

Changes reach this module two ways. Every audited write passes its audit row to
`events_from_audit` (settings.AUDIT_RECEIVERS) inside the write's transaction, so the
event commits or rolls back with the change. Breaker transitions happen outside any
transaction: `events_from_breaker` (settings.RESILIENCE_BREAKER_TRANSITION_RECEIVERS)
records them best-effort, once per transition across processes.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction
from tenants.models import PRODUCTION
from webhooks.models import EventType, WebhookDelivery, WebhookEvent
from webhooks.selectors import endpoints_subscribed
from webhooks.services.delivery import webhooks_courier_wake

# audit action -> event type; other actions make no event.
AUDIT_EVENTS = {
    AuditAction.FLAG_CREATE: EventType.FLAG_CHANGED,
    AuditAction.FLAG_UPDATE: EventType.FLAG_CHANGED,
    # A segment's conditions decide the flags whose rules name it, so its changes are definition changes too.
    AuditAction.SEGMENT_CREATE: EventType.SEGMENT_CHANGED,
    AuditAction.SEGMENT_UPDATE: EventType.SEGMENT_CHANGED,
    AuditAction.SEGMENT_DELETE: EventType.SEGMENT_CHANGED,
    AuditAction.FLAG_SET_OVERRIDE: EventType.OVERRIDE_SET,
    AuditAction.FLAG_CLEAR_OVERRIDE: EventType.OVERRIDE_CLEARED,
    AuditAction.FLAG_OWNER_TOGGLE: EventType.OWNER_TOGGLED,
    AuditAction.FLAG_OWNER_RESET: EventType.OWNER_TOGGLED,
    AuditAction.ENVIRONMENT_PROMOTE: EventType.ENVIRONMENT_PROMOTED,
    AuditAction.TENANT_SUSPEND: EventType.TENANT_STATUS_CHANGED,
    AuditAction.TENANT_RESUME: EventType.TENANT_STATUS_CHANGED,
    AuditAction.TENANT_DELETE: EventType.TENANT_STATUS_CHANGED,
    AuditAction.APIKEY_ISSUE: EventType.KEY_ISSUED,
    AuditAction.APIKEY_REVOKE: EventType.KEY_REVOKED,
}
BREAKER_EVENTS = {"open": EventType.BREAKER_OPENED, "closed": EventType.BREAKER_CLOSED}
# Endpoint breakers are shown on the breakers page and in the delivery log; an event about
# them would be queued behind the very endpoint that is failing.
ENDPOINT_BREAKER_PREFIX = "webhook."
TENANT_STATUS_FIELDS = ("status", "status_reason")
# Events about one row of a tenant's environment: the environment names the row (in `object`), not its state.
ENVIRONMENT_EVENTS = (EventType.OVERRIDE_SET, EventType.OVERRIDE_CLEARED, EventType.OWNER_TOGGLED)
# The promotion's audit reason, before any `[via …]` suffix: "promoted <source> to <target>".
PROMOTED = re.compile(r"^promoted (\S+) to (\S+)")


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_record(*, type: str, data: dict, tenant=None, at: datetime | None = None) -> WebhookEvent | None:
    """Record an event and its deliveries in the current transaction; return None if no endpoint wants it."""
    endpoints = endpoints_subscribed(event_type=type, tenant_id=getattr(tenant, "pk", None))
    if not endpoints:
        return None
    at = at or timezone.now()
    event = WebhookEvent.objects.create(
        id=f"msg_{uuid.uuid4().hex}",
        type=type,
        tenant=tenant,
        payload={"type": str(type), "timestamp": _timestamp(at), "data": data},
    )
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=now) for endpoint in endpoints]
    )
    # The request thread only signals; this worker's courier sends (others find it on their next poll).
    transaction.on_commit(webhooks_courier_wake)
    return event


def _object(audit_event, event_type: str) -> dict:
    snapshot = audit_event.after or audit_event.before or {}
    if event_type == EventType.FLAG_CHANGED:
        return {"type": "flag", "key": snapshot.get("key", "")}
    if event_type == EventType.SEGMENT_CHANGED:
        return {"type": "segment", "key": snapshot.get("key", "")}
    if event_type in (EventType.OVERRIDE_SET, EventType.OVERRIDE_CLEARED):
        return {"type": "flag_override", "flag": audit_event.object_id, "environment": _environment(audit_event)}
    if event_type == EventType.OWNER_TOGGLED:
        return {"type": "owner_toggle", "flag": audit_event.object_id, "environment": _environment(audit_event)}
    if event_type == EventType.ENVIRONMENT_PROMOTED:
        return {"type": "environment", "key": audit_event.object_id}
    if event_type == EventType.TENANT_STATUS_CHANGED:
        return {"type": "tenant", "slug": getattr(audit_event.tenant, "slug", "")}
    return {"type": "api_key", "prefix": snapshot.get("prefix", ""), "name": snapshot.get("name", "")}


def _only(snapshot: dict | None, fields: tuple[str, ...]) -> dict | None:
    return None if snapshot is None else {name: snapshot.get(name) for name in fields}


def _environment(audit_event) -> str:
    """Return the environment of an override or owner-toggle row (its snapshots name one unless production)."""
    snapshot = audit_event.after or audit_event.before or {}
    return snapshot.get("environment", PRODUCTION)


def _without_environment(snapshot: dict | None) -> dict | None:
    if snapshot is None:
        return None
    return {name: value for name, value in snapshot.items() if name != "environment"}


def _promotion(audit_event) -> dict:
    """Return the source, target and changes of a promotion's audit row (before/after keyed `<layer>.<flag>`)."""
    match = PROMOTED.match(audit_event.reason or "")
    before, after = audit_event.before or {}, audit_event.after or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        # A layer's name has no dot and a flag key may: the first dot ends the layer.
        layer, _, flag = name.partition(".")
        changes.append({"layer": layer, "flag": flag, "before": before.get(name), "after": after.get(name)})
    return {
        "source": match.group(1) if match else None,
        "target": audit_event.object_id,
        "changes": changes,
    }


def events_from_audit(audit_event) -> WebhookEvent | None:
    """Record the webhook event an audited change stands for, if it is one receivers subscribe to."""
    event_type = AUDIT_EVENTS.get(audit_event.action)
    if event_type is None:
        return None
    before, after = audit_event.before, audit_event.after
    if before is not None and before == after:
        return None  # saved without a change: nothing happened a receiver could act on
    if event_type == EventType.TENANT_STATUS_CHANGED:
        before, after = _only(before, TENANT_STATUS_FIELDS), _only(after, TENANT_STATUS_FIELDS)
    if event_type in ENVIRONMENT_EVENTS:
        before, after = _without_environment(before), _without_environment(after)
    tenant = audit_event.tenant
    data = {
        "tenant": tenant.slug if tenant is not None else None,
        "object": _object(audit_event, event_type),
        "before": before,
        "after": after,
        "actor": audit_event.actor_label,
    }
    if event_type == EventType.ENVIRONMENT_PROMOTED:
        # One event for the whole promotion: its changes are listed, not a before and an after.
        del data["before"], data["after"]
        data.update(_promotion(audit_event))
    return event_record(type=event_type, data=data, tenant=tenant, at=audit_event.created_at)


def events_from_breaker(*, name: str, old: str, new: str, reason: str = "", actor: str = "") -> WebhookEvent | None:
    """Record a breaker's opening or closing (best-effort: the caller logs a failure and goes on)."""
    event_type = BREAKER_EVENTS.get(new)
    if event_type is None or name.startswith(ENDPOINT_BREAKER_PREFIX):
        return None
    data = {
        "tenant": None,
        "object": {"type": "breaker", "name": name},
        "before": {"state": old},
        "after": {"state": new},
        "actor": actor or "system",
        "reason": reason,
    }
    with transaction.atomic():
        return event_record(type=event_type, data=data)
