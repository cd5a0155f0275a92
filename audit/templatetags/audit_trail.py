"""Template tags that show the audit trail in the admin (the index's recent actions)."""

from __future__ import annotations

from django import template

from audit.display import audit_object_label, audit_object_url
from audit.selectors import audit_by_actor

register = template.Library()

_ADDED = ("create", "add", "issue")
_REMOVED = ("remove", "revoke", "delete", "offboard", "revoke_all")


def _icon(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    return "addlink" if verb in _ADDED else "deletelink" if verb in _REMOVED else "changelink"


@register.simple_tag
def recent_audit_events(user, limit: int = 10) -> list[dict]:
    """Return the user's latest audited writes as {event, label, url, icon} for the admin index."""
    return [
        {
            "event": event,
            "label": audit_object_label(event),
            "url": audit_object_url(event),
            "icon": _icon(event.action),
        }
        for event in audit_by_actor(user, limit)
    ]
