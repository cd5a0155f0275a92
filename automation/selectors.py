"""Reads for staff API tokens: the per-request check of a presented token."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from automation.cache import token_used_key
from automation.models import StaffToken
from automation.services import TOKEN_PATTERN, staff_token_mark_used, token_hash
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

LAST_USED_EVERY = 60  # seconds: at most one last_used_at write per token per minute


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of presenting a token: `token` when usable, else a refusal code and message."""

    token: StaffToken | None
    error: str = ""
    detail: str = ""


def staff_token_check(secret: str) -> TokenCheck:
    """Return the usable token behind `secret`, or why it is refused (read from the database every time)."""
    if not TOKEN_PATTERN.match(secret):
        return TokenCheck(None, "invalid_token", "Malformed token: expected `Bearer sat_<8 hex>_<43 characters>`.")
    token = StaffToken.objects.select_related("user").filter(secret_hash=token_hash(secret)).first()
    if token is None:
        return TokenCheck(None, "invalid_token", "Unknown staff token.")
    if token.revoked_at is not None:
        return TokenCheck(None, "revoked_token", "This staff token was revoked; create a new one in the admin.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return TokenCheck(None, "expired_token", "This staff token has expired; create a new one in the admin.")
    if not token.user.is_active:
        return TokenCheck(None, "inactive_user", "The token's user is deactivated; its tokens no longer work.")
    return TokenCheck(token)


def staff_token_touch(token: StaffToken) -> bool:
    """Record the token's use unless it was recorded in the last minute; return True if written.

    A Redis SET NX guard lets one request a minute through to the database; without
    Redis the use is not recorded (telemetry), rather than written on every request.
    """
    now = timezone.now()
    try:
        first = get_redis().set(token_used_key(token.pk), now.isoformat(), nx=True, ex=LAST_USED_EVERY)
    except REDIS_UNAVAILABLE_ERRORS as exc:  # RedisDisabled among them
        logger.warning("staff token last-use not recorded: Redis unavailable (%s)", exc)
        return False
    if first:
        staff_token_mark_used(token_id=token.pk, at=now)
    return bool(first)
