"""The app's Redis clients and the key naming contract.

Every Redis key the app writes outside the Django cache starts with
`<REDIS_KEY_PREFIX>:<family>:`, so operators can tell which part of the app owns a
key and commands can SCAN one family at a time. Each owner builds its keys in one
module (`keys.py` next to its code, or here for the cache and the command locks)
that lists its families in `FAMILIES`; docs/redis-keys.md is generated from them.
"""

from __future__ import annotations

from typing import Protocol, cast

import redis
from django.conf import settings
from django_redis import get_redis_connection

from agentapi_admin.envconfig import redact_url as redacted_url  # noqa: F401 - re-exported
from resilience.exceptions import RedisDisabled
from resilience.keyfamily import KeyFamily

FAMILIES = (
    KeyFamily(
        pattern="cache:<version>:<key>",
        type="string (pickled)",
        ttl='per call; default 300 s (`CACHES["default"]["TIMEOUT"]`)',
        owner="Django's default cache (django-redis names the keys from `KEY_PREFIX`), any `cache.set`",
        purpose="the app's cache (the form throttles' counters among them); removed by TTL",
    ),
    KeyFamily(
        pattern="lock:<command>",
        type="string with a token (redis-py's `Lock`)",
        ttl="the lock's lease (seconds)",
        owner="management commands and `run_maintenance`",
        purpose="one copy of a command at a time; released by the holder on exit, by TTL if it dies",
    ),
)


def get_redis(alias: str = "default") -> redis.Redis:
    """Return the pooled redis-py client behind a django-redis cache alias."""
    if not settings.RESILIENCE_REDIS_ENABLED:
        raise RedisDisabled("REDIS_ENABLE=false: this feature needs Redis.")
    return get_redis_connection(alias)


def decoded(reply: bytes | str) -> str:
    """Return a Redis reply as text: bytes from the app's clients (they never set decode_responses)."""
    return reply.decode() if isinstance(reply, bytes) else reply


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
    if settings.RESILIENCE_REDIS_CLUSTER_NODES:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(host, port) for host, port in settings.RESILIENCE_REDIS_CLUSTER_NODES]
        return RedisCluster(startup_nodes=nodes, require_full_coverage=False, **options)
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


class _BreakerClient(Protocol):
    """What the caches' CLIENT_CLASS builds (resilience.breakers.redis_client; settings._redis_cache)."""

    def without_breaker(self) -> redis.Redis: ...


def get_redis_without_breaker(alias: str = "default") -> redis.Redis:
    """Return a client on the same pool as get_redis() whose commands skip the in-process Redis breaker."""
    return cast(_BreakerClient, get_redis(alias)).without_breaker()


def key(*parts: object) -> str:
    """Return an app key: `<prefix>:<part>:<part>…`."""
    return ":".join([settings.RESILIENCE_KEY_PREFIX, *(str(part) for part in parts)])


def family_of(name: str) -> str | None:
    """Return the family segment of an app key (`rl`, `flags`, ...), or None for a key of another app."""
    prefix = settings.RESILIENCE_KEY_PREFIX + ":"
    return name[len(prefix) :].split(":", 1)[0] if name.startswith(prefix) else None


def lock_key(name: str) -> str:
    """Return the key of a command's lock."""
    return key("lock", name)
