"""SESSION_ENGINE for SESSION_STORAGE=redis: Redis sessions with a per-user index."""

from resilience.sessions.backends.redis import SessionStore

__all__ = ["SessionStore"]
