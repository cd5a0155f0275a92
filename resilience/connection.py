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


def get_redis_without_breaker(alias: str = "default") -> redis.Redis:
    """Return a client on the same pool as get_redis() whose commands skip the in-process Redis breaker."""
    return get_redis(alias).without_breaker()


def key(*parts: object) -> str:
    """Return an app key: `<prefix>:<part>:<part>…`."""
    return ":".join([settings.RESILIENCE_KEY_PREFIX, *(str(part) for part in parts)])
