"""Reads about users' live sessions, through whichever indexed engine SESSION_ENGINE names."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured

from resilience.sessions.backends.base import IndexedSessionMixin, SessionInfo, session_ref


def session_engine() -> type[IndexedSessionMixin]:
    """Return the configured SessionStore class; it must support per-user listing."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store, IndexedSessionMixin):
        raise ImproperlyConfigured(
            f"SESSION_ENGINE={settings.SESSION_ENGINE!r} cannot list sessions per user: use "
            "resilience.sessions.backend (redis), resilience.sessions.backends.cached_db or "
            "resilience.sessions.backends.db (settings pick one from SESSION_STORAGE)."
        )
    return store


def sessions_for_user(user) -> list[SessionInfo]:
    """Return the user's live sessions, most recently seen first."""
    return session_engine().sessions_for_user_id(str(user.pk))


def session_for_ref(user, ref: str) -> SessionInfo | None:
    """Return the user's live session whose public reference is `ref`, or None."""
    return next((info for info in sessions_for_user(user) if info.ref == ref), None)


def unreachable_session_stores() -> list[str]:
    """Return the stores whose sessions the listings above could not include (e.g. Redis during an outage)."""
    return session_engine().unreachable_stores()


def session_users(*, cursor: int = 0, count: int = 50) -> tuple[list[tuple[AbstractBaseUser, int]], int]:
    """Return ([(user, live session count)], next cursor) for users that have sessions."""
    counts, next_cursor = session_engine().users_with_sessions(cursor=cursor, count=count)
    users = get_user_model().objects.in_bulk([int(pk) for pk in counts if pk.isdigit()] or [])
    rows: list[tuple[AbstractBaseUser, int]] = [
        (users[int(pk)], n) for pk, n in counts.items() if pk.isdigit() and int(pk) in users
    ]
    rows.sort(key=lambda row: row[0].get_username())
    return rows, next_cursor


__all__ = [
    "SessionInfo",
    "session_engine",
    "session_for_ref",
    "session_ref",
    "session_users",
    "sessions_for_user",
    "unreachable_session_stores",
]
