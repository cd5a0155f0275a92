"""The audit trail: filter and page through every write."""

from __future__ import annotations

from datetime import datetime

from ninja import Query, Router

from audit.models import AuditEvent
from automation.api.auth import staff
from automation.api.http import DEFAULT_LIMIT, MAX_LIMIT, page
from automation.api.schemas import AuditPage
from automation.api.serializers import audit_data
from automation.api.tenants import ERRORS

router = Router(tags=["audit"])
SINCE = Query(None, description="Events at or after this time (ISO 8601).")
UNTIL = Query(None, description="Events before this time (ISO 8601).")


@router.get(
    "/audit-events",
    auth=staff("audit:read", "audit.view_auditevent"),
    response={200: AuditPage, **ERRORS},
    summary="Audit events, newest first (cursor pages)",
)
def audit_events_list(
    request,
    tenant: str | None = Query(None, max_length=50, description="A tenant slug."),
    action: str | None = Query(None, max_length=64, description="e.g. tenant.suspend"),
    actor: str | None = Query(None, max_length=150, description="A username (or `system`)."),
    object_type: str | None = Query(None, max_length=64, description="e.g. tenants.tenant"),
    object_id: str | None = Query(None, max_length=64),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = AuditEvent.objects.select_related("tenant")
    filters = {
        "tenant__slug": tenant,
        "action": action,
        "actor_label": actor,
        "object_type": object_type,
        "object_id": object_id,
        "created_at__gte": since,
        "created_at__lt": until,
    }
    rows = rows.filter(**{name: value for name, value in filters.items() if value is not None})
    return page(request, rows, key="-id", cursor=cursor, limit=limit, serialize=audit_data, kind=int)
