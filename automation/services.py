"""Writes for staff API tokens: `sat_<8 hex>_<43 characters>`, only a SHA-256 of it is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from automation.exceptions import TokenError
from automation.models import StaffToken
from automation.scopes import SCOPES, scopes_missing_permissions

TOKEN_PREFIX = "sat"  # noqa: S105 - the public marker of a token, not a secret
TOKEN_PATTERN = re.compile(r"^(sat_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
TOKEN_FIELDS = ["name", "prefix", "scopes", "expires_at", "revoked_at"]


def token_hash(secret: str) -> str:
    """Return the SHA-256 hex digest stored for a full token."""
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def staff_token_create(
    *,
    user: Any,
    name: str,
    scopes: list[str],
    actor: Any,
    expires_at: datetime | None = None,
    reason: str = "",
    ip: str | None = None,
) -> tuple[StaffToken, str]:
    """Create a token for `user`; return it with the full secret, which is shown once and never stored."""
    if not (user.is_active and user.is_staff):
        raise TokenError(
            f"{user.get_username()} is not an active staff user; only staff hold API tokens.", field="user"
        )
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError("name: give the token a name of 1-100 characters.", field="name")
    scopes = sorted(set(scopes or []))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise TokenError(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)}"
            + (f"; unknown: {', '.join(unknown)}." if unknown else "."),
            field="scopes",
        )
    missing = scopes_missing_permissions(user, scopes)
    if missing:
        lacking = "; ".join(f"{scope} needs {', '.join(perms)}" for scope, perms in missing.items())
        raise TokenError(
            f"A token is never broader than its user: {user.get_username()} lacks permissions ({lacking}). "
            "Grant them first or ask for fewer scopes.",
            field="scopes",
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("expires_at must be in the future.", field="expires_at")
    while True:
        prefix = f"{TOKEN_PREFIX}_{secrets.token_hex(4)}"
        secret = f"{prefix}_{secrets.token_urlsafe(32)}"
        if not StaffToken.objects.filter(Q(prefix=prefix) | Q(secret_hash=token_hash(secret))).exists():
            break
    token = StaffToken.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=token_hash(secret), scopes=scopes, expires_at=expires_at
    )
    audit_record(
        actor=actor,
        action=AuditAction.STAFF_TOKEN_CREATE,
        obj=token,
        after={**audit_snapshot(token, TOKEN_FIELDS), "user": user.get_username()},
        reason=reason,
        ip=ip,
    )
    return token, secret


@transaction.atomic
def staff_token_revoke(*, token: StaffToken, actor: Any, ip: str | None = None) -> StaffToken:
    """Revoke a token; the next request presenting it is refused (every request reads the row)."""
    locked = StaffToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        before = audit_snapshot(locked, TOKEN_FIELDS)
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.STAFF_TOKEN_REVOKE,
            obj=locked,
            before=before,
            after=audit_snapshot(locked, TOKEN_FIELDS),
            ip=ip,
        )
    token.revoked_at = locked.revoked_at
    return token


def staff_token_mark_used(*, token_id: int, at: datetime) -> None:
    """Record a token's use (telemetry, not audited; callers throttle it to once a minute)."""
    StaffToken.objects.filter(pk=token_id).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=at)).update(
        last_used_at=at
    )
