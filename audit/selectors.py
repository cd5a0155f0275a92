"""Reads of the audit trail."""

from __future__ import annotations

from audit.models import AuditEvent


def audit_by_actor(user, limit: int = 10) -> list[AuditEvent]:
    """Return the latest audit events written by `user`, newest first."""
    return list(
        AuditEvent.objects.filter(actor_user=user).select_related("tenant").order_by("-created_at", "-id")[:limit]
    )
