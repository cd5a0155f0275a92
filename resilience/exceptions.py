"""Errors raised by the resilience app."""


class RedisDisabled(RuntimeError):
    """Redis was requested while REDIS_ENABLE=false."""


class SessionNotFound(LookupError):
    """The session to act on does not exist (expired or already revoked)."""
