"""Redis sessions whose staff sessions are kept in the database (SESSION_STORAGE=redis, the default).

The console is needed most when Redis is not there: the Redis health page is the
first thing an operator opens during a Redis incident. So a session whose user is
staff when it is first saved signed in is a row of the session table, and every
other session (tenant owners, members) is a Redis session with the per-user index.
A session lives in exactly one store, so there is no second copy to go stale:
revoking a staff session during an outage deletes its only copy, and nothing comes
back when Redis returns.

- Loading tries Redis, then the database (a miss, or Redis unusable).
- A session whose Redis copy cannot be read keeps its key (the visitor is anonymous
  until Redis returns, but not signed out) and is never written over.
- The key is rotated on sign-in without touching a store; the session is placed
  on its first save, when the user is known, so staff sign in during an outage.
- Logout and revocation delete the one copy or raise and change nothing.
"""

from __future__ import annotations

import logging

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError
from django.db import transaction
from django.utils.crypto import get_random_string

from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.sessions.backends.base import SessionCleanupReport, SessionInfo, most_recent_first
from resilience.sessions.backends.db import SessionStore as DatabaseSessionStore
from resilience.sessions.backends.redis import SessionStore as RedisSessionStore
from resilience.sessions.backends.redis import now_ms
from resilience.sessions.keys import index_key

logger = logging.getLogger("resilience.sessions")

REDIS, DATABASE = "redis", "database"


class SessionStore(RedisSessionStore):
    """Staff sessions in the database, all others in Redis; one copy each."""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._where: str | None = None  # the store holding this session; None until loaded or saved
        self._unread = False  # Redis could not be read: the key may still name a session there
        self._unsaved = False  # a key drawn by cycle_key that no store holds yet

    @staticmethod
    def _rows():
        return DatabaseSessionStore.get_model_class().objects

    # ------------------------------------------------------------- one session
    def load(self):
        try:
            data = self._cache.get(self.cache_key)
            readable = True
        except REDIS_UNAVAILABLE_ERRORS:
            data, readable = None, False
        if data is not None:
            self._where = REDIS
            return {} if self.ended_by_absolute_lifetime(data) else data
        database = DatabaseSessionStore(self.session_key)
        row = database._get_session_from_db()
        if row is not None:
            self._where = DATABASE
            data = database.decode(row.session_data)
            return {} if self.ended_by_absolute_lifetime(data) else data
        if not readable:
            logger.warning("session store (Redis) unavailable: the visitor is anonymous until it returns")
            self._unread = True
            return {}
        self._session_key = None
        return {}

    def exists(self, session_key):
        return self._rows().filter(session_key=session_key).exists() or super().exists(session_key)

    def _get_new_session_key(self):
        # No existence check (it would need Redis): a collision of 32 random characters
        # is caught by the create-only write instead (CreateError, then a new key).
        return get_random_string(32, VALID_KEY_CHARS)

    def create(self):
        self._where, self._unread, self._unsaved = None, False, False
        super().create()

    def cycle_key(self):
        data = self._session
        old_key, old_where = self.session_key, self._where
        self._session_key = self._get_new_session_key()
        self._session_cache = data
        self._where, self._unread, self._unsaved = None, False, True
        self.modified = True
        if old_key:
            try:
                self._delete(old_key, old_where)
            except REDIS_UNAVAILABLE_ERRORS:
                # The old key keeps only what it held before sign-in (the signed-in data is
                # under the new key), so a planted key still gains nothing; it expires by TTL.
                logger.warning("session store unavailable: the pre-rotation session key expires by itself")

    def flush(self):
        super().flush()
        self._where, self._unread, self._unsaved = None, False, False

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        if self._unread:
            # Never write over a Redis session that could not be read: start a new one.
            self._session_key, self._unread, self._unsaved = self._get_new_session_key(), False, True
        unsaved = self._unsaved
        data = self._get_session(no_load=must_create or unsaved)
        where = self._where or self._place(data)
        while True:
            try:
                if where == DATABASE:
                    database = DatabaseSessionStore(self.session_key)
                    database._session_cache = data
                    database.save(must_create=must_create or unsaved)
                else:
                    super().save(must_create=must_create or unsaved)
            except CreateError:
                if not unsaved:
                    raise
                self._session_key = self._get_new_session_key()
                continue
            break
        self._where, self._unsaved = where, False

    @staticmethod
    def _place(data: dict) -> str:
        user_id = data.get(SESSION_KEY)
        if user_id is not None and get_user_model()._default_manager.filter(pk=user_id, is_staff=True).exists():
            return DATABASE
        return REDIS

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._delete(session_key, self._where if session_key == self.session_key else None)

    def _delete(self, session_key: str, where: str | None) -> None:
        if where != REDIS and self._rows().filter(session_key=session_key).delete()[0]:
            return  # its only copy: a database session has nothing in Redis
        if where != DATABASE:
            super().delete(session_key)  # raises, having changed nothing, when Redis is unusable

    def session_owner(self, session_key: str) -> str | None:
        owner = DatabaseSessionStore().session_owner(session_key)
        return owner if owner is not None else super().session_owner(session_key)

    # ----------------------------------------------------------- per user
    @classmethod
    def sessions_for_user_id(cls, user_id: str) -> list[SessionInfo]:
        held = DatabaseSessionStore.sessions_for_user_id(user_id)
        try:
            cached = super().sessions_for_user_id(user_id)
        except REDIS_UNAVAILABLE_ERRORS:
            logger.warning("session store (Redis) unavailable: listing the database-held sessions only")
            cached = []
        return most_recent_first(held + cached)

    @classmethod
    def users_with_sessions(cls, *, cursor: int = 0, count: int = 50) -> tuple[dict[str, int], int]:
        held, _ = DatabaseSessionStore.users_with_sessions(count=10**9)  # staff only: a short list
        try:
            cached, next_cursor = super().users_with_sessions(cursor=cursor, count=count)
            extra = cls._redis_counts(list(held)) if cursor == 0 else {}
        except REDIS_UNAVAILABLE_ERRORS:
            return (held if cursor == 0 else {}), 0
        # Database users are counted on the first page (with their Redis sessions), never again.
        page = {user_id: n for user_id, n in cached.items() if user_id not in held}
        if cursor == 0:
            page.update({user_id: n + extra.get(user_id, 0) for user_id, n in held.items()})
        return page, next_cursor

    @classmethod
    def unreachable_stores(cls) -> list[str]:
        try:
            cls._redis().ping()
        except REDIS_UNAVAILABLE_ERRORS:
            return ["Redis"]
        return []

    @classmethod
    def _redis_counts(cls, user_ids: list[str]) -> dict[str, int]:
        if not user_ids:
            return {}
        client, now = cls._redis(), now_ms()
        with client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(index_key(user_id), now, "+inf")
            return dict(zip(user_ids, pipe.execute(), strict=True))

    @classmethod
    def delete_for_user_id(cls, user_id: str, *, except_key: str | None = None) -> list[str]:
        # All or nothing: if Redis refuses, the database deletes roll back with it.
        with transaction.atomic():
            doomed = DatabaseSessionStore.delete_for_user_id(user_id, except_key=except_key)
            return doomed + super().delete_for_user_id(user_id, except_key=except_key)

    # --------------------------------------------------------- maintenance
    @classmethod
    def clean_up(cls, *, batch_size=1000, dry_run=False, tick=None) -> SessionCleanupReport:
        report, tick = SessionCleanupReport(), tick or (lambda: None)
        DatabaseSessionStore.clean_up_rows(report, batch_size=batch_size, dry_run=dry_run, tick=tick)
        cls.clean_up_index(report, batch_size=batch_size, dry_run=dry_run, tick=tick)
        return report
