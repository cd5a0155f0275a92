"""Turn a write refused for lack of approval into a change request, through settings.TENANTS_APPROVAL_HANDLER.

The tenants app sits below the app that keeps change requests, so it names the handler by
dotted path (as the audit trail names its receivers) instead of importing it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from tenants.exceptions import ApprovalRequired


def approval_request(
    refusal: ApprovalRequired,
    *,
    actor: Any,
    ip: str | None = None,
    apply_at: datetime | None = None,
    revert_at: datetime | None = None,
):
    """Create the change request a refused write becomes and return it; re-raise the refusal without a handler."""
    path = getattr(settings, "TENANTS_APPROVAL_HANDLER", "")
    if not path:
        raise refusal
    return import_string(path)(
        operation=refusal.operation,
        params=refusal.params,
        author=actor,
        ip=ip,
        apply_at=apply_at,
        revert_at=revert_at,
    )
