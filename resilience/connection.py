"""The app's Redis clients and the key naming contract.

Every Redis key the app writes outside the Django cache starts with
`<REDIS_KEY_PREFIX>:<family>:` (see docs/redis-keys.md), so operators can tell
which part of the app owns a key and commands can SCAN one family at a time.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django_redis import get_redis_connection

from agentapi_admin.envconfig import redact_url as redacted_url  # noqa: F401 - re-exported
from resilience.exceptions import RedisDisabled


def get_redis(alias: str = "default") -> redis.Redis:
    """Return the pooled redis-py client behind a django-redis cache alias."""
    if not settings.RESILIENCE_REDIS_ENABLED:
        raise RedisDisabled("REDIS_ENABLE=false: this feature needs Redis.")
    return get_redis_connection(alias)


def get_async_redis():
    """Return a new asyncio client of the same Redis as get_redis(), for long blocking reads; close it with aclose().

    Its commands have no socket timeout (a blocking XREAD outlives REDIS_CONNECTION_TIMEOUT): callers
    bound each read themselves (XREAD BLOCK).
    """
    if not settings.RESILIENCE_REDIS_ENABLED:
        raise RedisDisabled("REDIS_ENABLE=false: this feature needs Redis.")
    import redis.asyncio as aioredis
    from redis.asyncio.sentinel import Sentinel

    options = dict(settings.RESILIENCE_REDIS_CONNECTION_KWARGS)
    options.pop("socket_timeout", None)
    options["max_connections"] = 2
    if settings.RESILIENCE_REDIS_SENTINELS:
        timeout = settings.RESILIENCE_REDIS_TIMEOUT
        sentinels = Sentinel(
            settings.RESILIENCE_REDIS_SENTINELS,
            sentinel_kwargs={
                "password": settings.RESILIENCE_REDIS_SENTINEL_PASSWORD or None,
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
            },
            **{name: value for name, value in options.items() if name != "max_connections"},
        )
        return sentinels.master_for(settings.RESILIENCE_REDIS_SENTINEL_MASTER, db=settings.RESILIENCE_REDIS_SENTINEL_DB)
    return aioredis.from_url(settings.RESILIENCE_REDIS_URL, **options)


def key(*parts: object) -> str:
    """Return an app key: `<prefix>:<part>:<part>…`."""
    return ":".join([settings.RESILIENCE_KEY_PREFIX, *(str(part) for part in parts)])
