"""Errors raised by the resilience app."""


class RedisDisabled(RuntimeError):
    """Redis was requested while REDIS_ENABLE=false."""
