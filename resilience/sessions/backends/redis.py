"""Redis sessions (Django's cache engine) with a per-user index `<prefix>:sessidx:<user id>`.

The index is a sorted set: member = session key, score = expiry in epoch ms. It is
updated in the same code path as every save of an authenticated session, pruned
of expired members on each update, and the key itself expires with its last
session, so nothing outlives the sessions it lists. Entries whose session data is
gone (deleted elsewhere, evicted) are dropped the next time the user's sessions
are read or `clearsessions` runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.core.cache.backends.base import BaseCache
from django_redis import get_redis_connection

from resilience import lua
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.sessions.backends.base import (
    IndexedSessionMixin,
    SessionCleanupReport,
    SessionInfo,
    most_recent_first,
    session_info,
)
from resilience.sessions.keys import index_key, index_pattern, index_user

INDEX_UPSERT = lua.register(
    "sessions.index_upsert", Path(__file__).resolve().parent.parent / "lua" / "index_upsert.lua"
)
_SCAN_BATCH = 1000
_SCAN_ROUNDS = 20
# Memory bound: only this many live members of one user's index are checked for orphans per run.
MAX_MEMBERS_PER_INDEX = 10_000


def now_ms() -> int:
    """Return the time in epoch milliseconds (the index scores)."""
    return int(time.time() * 1000)


class SessionStore(IndexedSessionMixin, CacheSessionStore):
    """Django's cache session store plus the per-user index."""

    if TYPE_CHECKING:
        _cache: BaseCache  # set by CacheSessionStore; private, so django-stubs leaves it out

    @staticmethod
    def _redis():
        # The client of the session cache itself: the index lives wherever the sessions do.
        return get_redis_connection(settings.SESSION_CACHE_ALIAS)

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()  # create() comes back here with must_create=True
        super().save(must_create=must_create)
        user_id = self._get_session(no_load=True).get(SESSION_KEY)
        if user_id is not None:
            now = now_ms()
            expires = now + self.get_expiry_age() * 1000
            INDEX_UPSERT.run(self._redis(), [index_key(user_id)], [self.session_key, expires, now])

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        owner = self._owner_in_redis(session_key)
        super().delete(session_key)
        if owner is not None:
            self._redis().zrem(index_key(owner), session_key)

    def session_owner(self, session_key: str) -> str | None:
        return self._owner_in_redis(session_key)

    def _owner_in_redis(self, session_key: str) -> str | None:
        try:
            data = self._cache.get(self.cache_key_prefix + session_key)
        except REDIS_UNAVAILABLE_ERRORS:
            raise  # "unknown", not "no such session": a revoke must not report success
        except Exception:  # an invalid key is simply not a session (as CacheSessionStore.load does)
            return None
        user_id = (data or {}).get(SESSION_KEY)
        return None if user_id is None else str(user_id)

    @classmethod
    def sessions_for_user_id(cls, user_id: str) -> list[SessionInfo]:
        client = cls._redis()
        idx = index_key(user_id)
        pairs = [(m.decode(), score) for m, score in client.zrangebyscore(idx, now_ms(), "+inf", withscores=True)]
        store = cls()
        stored = store._cache.get_many([cls.cache_key_prefix + k for k, _ in pairs]) if pairs else {}
        infos, ghosts = [], []
        for session_key, score in pairs:
            data = stored.get(cls.cache_key_prefix + session_key)
            info = session_info(session_key, data, score / 1000) if data is not None else None
            if info is None or info.user_id != str(user_id):
                ghosts.append(session_key)
            else:
                infos.append(info)
        if ghosts:
            client.zrem(idx, *ghosts)
        return most_recent_first(infos)

    @classmethod
    def users_with_sessions(cls, *, cursor: int = 0, count: int = 50) -> tuple[dict[str, int], int]:
        client = cls._redis()
        names: list[bytes] = []
        # SCAN's COUNT is a hint: keep going a few rounds so a page is not empty just
        # because other families dominate the keyspace; bounded so a huge one stays cheap.
        for _ in range(_SCAN_ROUNDS):
            cursor, batch = client.scan(cursor=cursor, match=index_pattern(), count=_SCAN_BATCH)
            names.extend(batch)
            if cursor == 0 or len(names) >= count:
                break
        now = now_ms()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcount(name, now, "+inf")
            counts = pipe.execute()
        users = {index_user(name.decode()): n for name, n in zip(names, counts, strict=True) if n}
        return users, int(cursor)

    @classmethod
    def delete_for_user_id(cls, user_id: str, *, except_key: str | None = None) -> list[str]:
        client = cls._redis()
        idx = index_key(user_id)
        doomed = [m.decode() for m in client.zrange(idx, 0, -1) if m.decode() != except_key]
        if doomed:
            cls()._cache.delete_many([cls.cache_key_prefix + k for k in doomed])
            client.zrem(idx, *doomed)
        return doomed

    @classmethod
    def clean_up(cls, *, batch_size=1000, dry_run=False, tick=None) -> SessionCleanupReport:
        report = SessionCleanupReport()
        cls.clean_up_index(report, batch_size=batch_size, dry_run=dry_run, tick=tick or (lambda: None))
        return report

    @classmethod
    def clean_up_index(cls, report: SessionCleanupReport, *, batch_size: int, dry_run: bool, tick) -> None:
        """Drop expired members and members whose session data is gone from every user index."""
        client = cls._redis()
        for names in _index_batches(client, batch_size):
            cls._clean_up_index_batch(client, names, report=report, dry_run=dry_run)
            tick()

    @classmethod
    def _clean_up_index_batch(cls, client, names: list[bytes], *, report: SessionCleanupReport, dry_run: bool) -> None:
        # Three pipelined round trips per batch: trim (or count) + read live members, EXISTS each, ZREM orphans.
        cache = cls()._cache
        now = now_ms()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                if dry_run:
                    pipe.zcount(name, "-inf", now)
                else:
                    pipe.zremrangebyscore(name, "-inf", now)
                pipe.zrangebyscore(name, now + 1, "+inf", start=0, num=MAX_MEMBERS_PER_INDEX)
            replies = pipe.execute()
        members_of = {}
        for name, expired, members in zip(names, replies[::2], replies[1::2], strict=True):
            report.expired_entries += expired
            if members:
                members_of[name] = [m.decode() for m in members]
        checks = [(name, member) for name, members in members_of.items() for member in members]
        if checks:
            with client.pipeline(transaction=False) as pipe:
                for _, member in checks:
                    pipe.exists(cache.make_key(cls.cache_key_prefix + member))
                alive = pipe.execute()
            orphans: dict[bytes, list[str]] = {}
            for (name, member), ok in zip(checks, alive, strict=True):
                if not ok:
                    orphans.setdefault(name, []).append(member)
            report.orphaned_entries += sum(len(m) for m in orphans.values())
            if orphans and not dry_run:
                with client.pipeline(transaction=False) as pipe:
                    for name, members in orphans.items():
                        pipe.zrem(name, *members)
                    pipe.execute()
        report.index_keys += len(names)
        report.batches += 1


def _index_batches(client, batch_size: int) -> Iterator[list[bytes]]:
    """Yield the names of session-index keys, at most `batch_size` per SCAN page."""
    cursor = 0
    pattern = index_pattern()
    while True:
        cursor, names = client.scan(cursor=cursor, match=pattern, count=batch_size)
        # COUNT is only a hint (a small keyspace comes back whole): cut pages to the batch size.
        for start in range(0, len(names), batch_size):
            yield names[start : start + batch_size]
        if not cursor:
            return
