"""Database sessions (SESSION_STORAGE=db) listed per user by decoding live session rows.

The session table has no user column, so listing reads every unexpired row; fine
for the small deployments that run without Redis, documented as the trade-off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import transaction
from django.utils import timezone

from resilience.sessions.backends.base import (
    IndexedSessionMixin,
    SessionCleanupReport,
    SessionInfo,
    most_recent_first,
    session_info,
)


class DatabaseIndexMixin(IndexedSessionMixin):
    """The per-user listing for engines whose sessions are rows of the session table."""

    if TYPE_CHECKING:
        # From Django's database SessionStore, which every subclass also extends (the latter private API).
        @classmethod
        def get_model_class(cls) -> type[AbstractBaseSession]: ...

        def _get_session_from_db(self) -> AbstractBaseSession | None: ...

    @classmethod
    def _live_rows(cls) -> Iterator[tuple[str, dict, float]]:
        store = cls()
        rows = cls.get_model_class().objects.filter(expire_date__gt=timezone.now())
        for session_key, raw, expire_date in rows.values_list("session_key", "session_data", "expire_date").iterator(
            chunk_size=500
        ):
            yield session_key, store.decode(raw), expire_date.timestamp()

    @classmethod
    def sessions_for_user_id(cls, user_id: str) -> list[SessionInfo]:
        infos = [
            session_info(session_key, data, expires)
            for session_key, data, expires in cls._live_rows()
            if str(data.get(SESSION_KEY)) == str(user_id)
        ]
        return most_recent_first([info for info in infos if info is not None])

    @classmethod
    def users_with_sessions(cls, *, cursor: int = 0, count: int = 50) -> tuple[dict[str, int], int]:
        counts = Counter(str(data[SESSION_KEY]) for _, data, _ in cls._live_rows() if SESSION_KEY in data)
        users = sorted(counts)
        page = users[cursor : cursor + count]
        next_cursor = cursor + count if cursor + count < len(users) else 0
        return {user_id: counts[user_id] for user_id in page}, next_cursor

    @classmethod
    def delete_for_user_id(cls, user_id: str, *, except_key: str | None = None) -> list[str]:
        doomed = [
            session_key
            for session_key, data, _ in cls._live_rows()
            if str(data.get(SESSION_KEY)) == str(user_id) and session_key != except_key
        ]
        store = cls()
        for session_key in doomed:
            store.delete(session_key)
        return doomed

    @classmethod
    def clean_up(cls, *, batch_size=1000, dry_run=False, tick=None) -> SessionCleanupReport:
        report = SessionCleanupReport()
        cls.clean_up_rows(report, batch_size=batch_size, dry_run=dry_run, tick=tick or (lambda: None))
        return report

    @classmethod
    def clean_up_rows(cls, report: SessionCleanupReport, *, batch_size: int, dry_run: bool, tick) -> None:
        """Delete expired session rows, `batch_size` per transaction."""
        model = cls.get_model_class()
        while True:
            expired = model.objects.filter(expire_date__lt=timezone.now())
            if dry_run:
                report.expired_rows = expired.count()
                return
            keys = list(expired.values_list("session_key", flat=True)[:batch_size])
            if not keys:
                return
            # One short transaction per batch: a huge backlog never holds a long lock on the table.
            with transaction.atomic():
                report.expired_rows += model.objects.filter(
                    session_key__in=keys, expire_date__lt=timezone.now()
                ).delete()[0]
            report.batches += 1
            tick()

    def session_owner(self, session_key: str) -> str | None:
        raw = (
            self.get_model_class()
            .objects.filter(session_key=session_key, expire_date__gt=timezone.now())
            .values_list("session_data", flat=True)
            .first()
        )
        user_id = self.decode(raw).get(SESSION_KEY) if raw else None
        return None if user_id is None else str(user_id)


class SessionStore(DatabaseIndexMixin, DbSessionStore):
    """Django's database session store plus per-user listing."""
