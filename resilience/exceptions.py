"""Errors raised by the resilience app."""

import redis


class RedisDisabled(RuntimeError):
    """Redis was requested while REDIS_ENABLE=false."""


class SessionNotFound(LookupError):
    """The session to act on does not exist (expired or already revoked)."""


class RedisUnavailable(redis.exceptions.ConnectionError):
    """The Redis breaker is open: the command was refused without touching the network."""
