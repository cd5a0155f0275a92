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

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django_redis import get_redis_connection

from resilience.connection import key
from resilience.sessions.backends.base import IndexedSessionMixin, SessionInfo, session_info

# Add/refresh one member, drop expired ones, and let the key expire with its last session.
_INDEX_UPSERT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2])))
end
return 1
"""
_SCAN_BATCH = 1000
_SCAN_ROUNDS = 20


def index_key(user_id: object) -> str:
    """Return the Redis key of a user's session index."""
    return key("sessidx", user_id)


def _now_ms() -> int:
    return int(time.time() * 1000)


class SessionStore(IndexedSessionMixin, CacheSessionStore):
    """Django's cache session store plus the per-user index."""

    _scripts: dict = {}

    @staticmethod
    def _redis():
        # The client of the session cache itself: the index lives wherever the sessions do.
        return get_redis_connection(settings.SESSION_CACHE_ALIAS)

    @classmethod
    def _upsert_script(cls):
        client = cls._redis()
        script = cls._scripts.get(id(client))
        if script is None:
            script = cls._scripts[id(client)] = client.register_script(_INDEX_UPSERT)
        return script

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()  # create() comes back here with must_create=True
        super().save(must_create=must_create)
        user_id = self._get_session(no_load=True).get(SESSION_KEY)
        if user_id is not None:
            now = _now_ms()
            expires = now + self.get_expiry_age() * 1000
            self._upsert_script()(keys=[index_key(user_id)], args=[self.session_key, expires, now])

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        owner = self.session_owner(session_key)
        super().delete(session_key)
        if owner is not None:
            self._redis().zrem(index_key(owner), session_key)

    def session_owner(self, session_key: str) -> str | None:
        try:
            data = self._cache.get(self.cache_key_prefix + session_key)
        except Exception:  # an invalid key is simply not a session (as CacheSessionStore.load does)
            return None
        user_id = (data or {}).get(SESSION_KEY)
        return None if user_id is None else str(user_id)

    @classmethod
    def sessions_for_user_id(cls, user_id: str) -> list[SessionInfo]:
        client = cls._redis()
        idx = index_key(user_id)
        pairs = [(m.decode(), score) for m, score in client.zrangebyscore(idx, _now_ms(), "+inf", withscores=True)]
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
        return sorted(infos, key=lambda i: (i.last_seen or i.created or i.expires).timestamp(), reverse=True)

    @classmethod
    def users_with_sessions(cls, *, cursor: int = 0, count: int = 50) -> tuple[dict[str, int], int]:
        client = cls._redis()
        prefix = index_key("")
        names: list[bytes] = []
        # SCAN's COUNT is a hint: keep going a few rounds so a page is not empty just
        # because other families dominate the keyspace; bounded so a huge one stays cheap.
        for _ in range(_SCAN_ROUNDS):
            cursor, batch = client.scan(cursor=cursor, match=prefix + "*", count=_SCAN_BATCH)
            names.extend(batch)
            if cursor == 0 or len(names) >= count:
                break
        now = _now_ms()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcount(name, now, "+inf")
            counts = pipe.execute()
        users = {name.decode()[len(prefix) :]: n for name, n in zip(names, counts, strict=True) if n}
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
    def clear_expired(cls):
        """Drop expired and orphaned members from every user index (Redis expires the sessions themselves)."""
        client = cls._redis()
        cache = cls()._cache
        now = _now_ms()
        for name in client.scan_iter(match=index_key("") + "*", count=_SCAN_BATCH):
            client.zremrangebyscore(name, "-inf", now)
            members = [m.decode() for m in client.zrange(name, 0, -1)]
            if not members:
                continue
            with client.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.exists(cache.make_key(cls.cache_key_prefix + member))
                alive = pipe.execute()
            orphans = [m for m, ok in zip(members, alive, strict=True) if not ok]
            if orphans:
                client.zrem(name, *orphans)
