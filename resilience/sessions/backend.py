"""SESSION_ENGINE for SESSION_STORAGE=redis: Redis sessions with a per-user index, staff sessions in the database."""

from resilience.sessions.backends.hybrid import SessionStore

__all__ = ["SessionStore"]
