"""The contract every indexed session engine honours, and the metadata it keeps.

Django's session engines can load, save and delete one session by key but cannot
answer "which sessions does this user have?". Each engine here adds that, plus
client metadata (IP, user agent, created, last seen) stored inside the session
data itself, so the metadata expires exactly when the session does.

Every engine also enforces the absolute lifetime (SESSION_MAX_AGE_ABSOLUTE) on top
of the sliding one: the sign-in time is stamped into the session data, the stored
copy and the cookie never outlive it, and a session read after it is ended. Django's
async session API is routed through the same synchronous paths, so `asave`,
`acycle_key` and `alogin` keep the per-user index too.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

logger = logging.getLogger("resilience.sessions")

# Session-data key of the metadata dict: uid, ip, ua, created, seen (epoch seconds).
META_KEY = "_ops_meta"
# Session-data key of the sign-in stamp: uid and at (epoch seconds), the start of the absolute lifetime.
SIGN_IN_KEY = "_ops_signin"
USER_AGENT_MAX = 300


def session_ref(session_key: str) -> str:
    """Return the public reference of a session: a hash, so pages never show the secret key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


# Sorts a session without any known time last.
_NEVER = datetime.fromtimestamp(0, tz=UTC)


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


def most_recent_first(infos: list[SessionInfo]) -> list[SessionInfo]:
    """Return the sessions sorted by last activity, newest first."""
    return sorted(infos, key=lambda i: (i.last_seen or i.created or i.expires or _NEVER).timestamp(), reverse=True)


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


@dataclass
class SessionCleanupReport:
    """What one cleanup run found: index keys scanned, members and rows removed (or that would be)."""

    index_keys: int = 0
    expired_entries: int = 0
    orphaned_entries: int = 0
    expired_rows: int = 0
    batches: int = 0


def _signed_in_at(data: dict | None) -> float | None:
    stamp = (data or {}).get(SIGN_IN_KEY) or {}
    user_id = (data or {}).get(SESSION_KEY)
    if user_id is None or str(stamp.get("uid")) != str(user_id):
        return None
    return stamp.get("at")


def past_absolute_lifetime(data: dict | None, now: float | None = None) -> bool:
    """Tell whether a signed-in session's absolute lifetime is over."""
    started = _signed_in_at(data)
    if started is None:
        return False
    return (time.time() if now is None else now) >= started + settings.RESILIENCE_SESSION_MAX_AGE_ABSOLUTE


if TYPE_CHECKING:
    # The type checker sees the mixin as the Django engine every concrete store puts after it.
    from django.contrib.sessions.backends.base import SessionBase as _SessionEngine
else:
    _SessionEngine = object


class IndexedSessionMixin(_SessionEngine):
    """Per-user listing and revocation on top of a Django session engine."""

    if TYPE_CHECKING:
        # SessionBase internals the stores build on; private API, so django-stubs leaves them out.
        _session_cache: dict[str, Any]
        _session: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # ------------------------------------------------------------ lifetimes
    def stamp_sign_in(self, data: dict) -> None:
        """Record when the signed-in user of `data` signed in, if not recorded yet."""
        user_id = data.get(SESSION_KEY)
        if user_id is not None and _signed_in_at(data) is None:
            data[SIGN_IN_KEY] = {"uid": str(user_id), "at": time.time()}

    def _absolute_remaining(self) -> int | None:
        started = _signed_in_at(getattr(self, "_session_cache", None))
        if started is None:
            return None
        # Rounded up: the store may keep it a fraction of a second longer; loading refuses it on time.
        return max(0, math.ceil(started + settings.RESILIENCE_SESSION_MAX_AGE_ABSOLUTE - time.time()))

    def get_expiry_age(self, **kwargs):
        age = super().get_expiry_age(**kwargs)
        if "expiry" in kwargs:
            return age  # the age of a stored expiry (cached_db's load), not of this session
        remaining = self._absolute_remaining()
        return age if remaining is None else min(age, remaining)

    def get_expiry_date(self, **kwargs):
        if "expiry" in kwargs:
            return super().get_expiry_date(**kwargs)
        modification = kwargs.get("modification") or timezone.now()
        return modification + timedelta(seconds=self.get_expiry_age(**kwargs))

    def ended_by_absolute_lifetime(self, data: dict) -> bool:
        """Tell whether freshly loaded `data` is past its absolute lifetime; if so delete it from the store."""
        if not past_absolute_lifetime(data):
            return False
        try:
            self.delete()
        except Exception:  # its stored copy expires by itself at the same deadline
            logger.warning("could not delete a session past its absolute lifetime", exc_info=True)
        self._session_key = None
        return True

    def load(self):
        data = super().load()
        return {} if self.ended_by_absolute_lifetime(data) else data

    def save(self, must_create=False):
        if self.session_key is not None:
            self.stamp_sign_in(self._get_session(no_load=must_create))
        return super().save(must_create=must_create)

    # --------------------------------------- Django's async API, same paths
    # Django's engines implement these natively, bypassing the index and the lifetimes above.
    async def aload(self):
        return await sync_to_async(self.load)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def acreate(self):
        return await sync_to_async(self.create)()

    async def asave(self, must_create=False):
        return await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        return await sync_to_async(self.delete)(session_key)

    async def acycle_key(self):
        return await sync_to_async(self.cycle_key)()

    async def aflush(self):
        return await sync_to_async(self.flush)()

    async def aget_expiry_age(self, **kwargs):
        return await sync_to_async(self.get_expiry_age)(**kwargs)

    async def aget_expiry_date(self, **kwargs):
        return await sync_to_async(self.get_expiry_date)(**kwargs)

    @classmethod
    async def aclear_expired(cls):
        return await sync_to_async(cls.clear_expired)()

    @classmethod
    def unreachable_stores(cls) -> list[str]:
        """Return the names of the stores whose sessions cannot be listed right now."""
        return []

    # ---------------------------------------------------------- maintenance
    @classmethod
    def clean_up(
        cls, *, batch_size: int = 1000, dry_run: bool = False, tick: Callable[[], None] | None = None
    ) -> SessionCleanupReport:
        """Remove expired and orphaned sessions and index entries in batches; report what was (or would be) removed."""
        raise NotImplementedError("subclasses of IndexedSessionMixin must provide a clean_up() method")

    @classmethod
    def clear_expired(cls):
        """Run the engine's maintenance (what Django's clearsessions calls)."""
        cls.clean_up()

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
