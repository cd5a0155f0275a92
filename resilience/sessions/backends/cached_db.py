"""Write-through cached database sessions (SESSION_STORAGE=cached_db) listed per user."""

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore

from resilience.sessions.backends.db import DatabaseIndexMixin


class SessionStore(DatabaseIndexMixin, CachedDbSessionStore):
    """Django's cached_db session store plus per-user listing (deletes also clear the cache)."""
