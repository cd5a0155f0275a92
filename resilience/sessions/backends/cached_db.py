"""Write-through cached database sessions (SESSION_STORAGE=cached_db) listed per user."""

import logging
from typing import TYPE_CHECKING

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.cache.backends.base import BaseCache
from django.db import transaction

from resilience.sessions.backends.db import DatabaseIndexMixin

logger = logging.getLogger("resilience.sessions")


class SessionStore(DatabaseIndexMixin, CachedDbSessionStore):
    """Django's cached_db store plus per-user listing, readable while the cache (Redis) is down.

    Django's own load() re-fills the cache after a miss without catching errors, so
    a Redis outage turned every request with a session into a 500; the database
    copy is authoritative, so serve it. Deletes still fail during an outage: a
    cached copy left behind would bring a revoked session back when Redis returns.
    """

    if TYPE_CHECKING:
        _cache: BaseCache  # set by CachedDbSessionStore; private, so django-stubs leaves it out

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # as Django's load: an unusable cache is a miss
            data = None
        if data is not None:
            return {} if self.ended_by_absolute_lifetime(data) else data
        row = self._get_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        if self.ended_by_absolute_lifetime(data):
            return {}
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:
            logger.warning("Session cache unavailable; served the session from the database", exc_info=True)
        return data

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        # All or nothing: Django deletes the row first, so a refused cache delete left a
        # cached copy that signed the user in again once Redis returned. The row delete
        # waits in the transaction until the cached copy is gone.
        with transaction.atomic():
            DbSessionStore.delete(self, session_key)
            self._cache.delete(self.cache_key_prefix + session_key)
