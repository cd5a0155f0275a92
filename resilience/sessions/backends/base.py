"""The contract every indexed session engine honours, and the metadata it keeps.

Django's session engines can load, save and delete one session by key but cannot
answer "which sessions does this user have?". Each engine here adds that, plus
client metadata (IP, user agent, created, last seen) stored inside the session
data itself, so the metadata expires exactly when the session does.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import SESSION_KEY

# Session-data key of the metadata dict: uid, ip, ua, created, seen (epoch seconds).
META_KEY = "_ops_meta"
USER_AGENT_MAX = 300


def session_ref(session_key: str) -> str:
    """Return the public reference of a session: a hash, so pages never show the secret key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


def _dt(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch else None


@dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as the sessions page shows it."""

    session_key: str
    user_id: str
    ip: str
    user_agent: str
    created: datetime | None
    last_seen: datetime | None
    expires: datetime | None

    @property
    def ref(self) -> str:
        return session_ref(self.session_key)

    def as_dict(self) -> dict:
        """Return the JSON form; the session key itself is never included."""
        return {
            "ref": self.ref,
            "user_id": self.user_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created": self.created.isoformat() if self.created else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def session_info(session_key: str, data: dict, expires_epoch: float | None) -> SessionInfo | None:
    """Build a SessionInfo from decoded session data, or None for an anonymous session."""
    user_id = data.get(SESSION_KEY)
    if user_id is None:
        return None
    meta = data.get(META_KEY) or {}
    if str(meta.get("uid")) != str(user_id):
        meta = {}
    return SessionInfo(
        session_key=session_key,
        user_id=str(user_id),
        ip=meta.get("ip", ""),
        user_agent=meta.get("ua", ""),
        created=_dt(meta.get("created")),
        last_seen=_dt(meta.get("seen")),
        expires=_dt(expires_epoch),
    )


class IndexedSessionMixin:
    """Per-user listing and revocation on top of a Django session engine."""

    def note_activity(self, *, ip: str, user_agent: str, now: float | None = None) -> bool:
        """Record the client of an authenticated session; return True if the session must be saved.

        Writes at most once per SESSION_ACTIVITY_INTERVAL per session (or when the
        client changes), so an active user does not cost a Redis write per request.
        """
        if not hasattr(self, "_session_cache"):
            return False  # the request never read the session: nothing to refresh, no load forced
        user_id = self._session_cache.get(SESSION_KEY)
        if user_id is None:
            return False
        now = time.time() if now is None else now
        user_agent = user_agent[:USER_AGENT_MAX]
        meta = self._session_cache.get(META_KEY) or {}
        fresh = str(meta.get("uid")) == str(user_id)
        if (
            fresh
            and meta.get("ip") == ip
            and meta.get("ua") == user_agent
            and now - meta.get("seen", 0) < settings.RESILIENCE_SESSION_ACTIVITY_INTERVAL
        ):
            return False
        self[META_KEY] = {
            "uid": str(user_id),
            "ip": ip,
            "ua": user_agent,
            "created": meta.get("created", now) if fresh else now,
            "seen": now,
        }
        return True

    @classmethod
    def sessions_for_user_id(cls, user_id: str) -> list[SessionInfo]:
        """Return the user's live sessions."""
        raise NotImplementedError("subclasses of IndexedSessionMixin must provide a sessions_for_user_id() method")

    @classmethod
    def users_with_sessions(cls, *, cursor: int = 0, count: int = 50) -> tuple[dict[str, int], int]:
        """Return ({user id: live session count}, next cursor); cursor 0 starts, 0 back means done."""
        raise NotImplementedError("subclasses of IndexedSessionMixin must provide a users_with_sessions() method")

    @classmethod
    def delete_for_user_id(cls, user_id: str, *, except_key: str | None = None) -> list[str]:
        """Delete every session of the user except `except_key`; return the deleted keys."""
        raise NotImplementedError("subclasses of IndexedSessionMixin must provide a delete_for_user_id() method")

    def session_owner(self, session_key: str) -> str | None:
        """Return the user id a stored session belongs to, or None."""
        raise NotImplementedError("subclasses of IndexedSessionMixin must provide a session_owner() method")
