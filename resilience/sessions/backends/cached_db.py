"""Write-through cached database sessions (SESSION_STORAGE=cached_db) listed per user."""

import logging

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore

from resilience.sessions.backends.db import DatabaseIndexMixin

logger = logging.getLogger("resilience.sessions")


class SessionStore(DatabaseIndexMixin, CachedDbSessionStore):
    """Django's cached_db store plus per-user listing, readable while the cache (Redis) is down.

    Django's own load() re-fills the cache after a miss without catching errors, so
    a Redis outage turned every request with a session into a 500; the database
    copy is authoritative, so serve it. Deletes still fail during an outage: a
    cached copy left behind would bring a revoked session back when Redis returns.
    """

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # as Django's load: an unusable cache is a miss
            data = None
        if data is not None:
            return data
        row = self._get_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:
            logger.warning("Session cache unavailable; served the session from the database", exc_info=True)
        return data
