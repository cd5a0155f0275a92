"""Redis layout of the tenants app and the version stamps that invalidate it.

Each tenant has a `cache_version` in the database. Its evaluated flags and bootstrap
document live under `agentapi:flags:<tenant>:<cache_version>`; the version currently
published is `agentapi:flags:<tenant>:ver`. A write bumps `cache_version` inside its
transaction and, on commit, publishes the new version (only ever upwards) and deletes
the previous document: readers holding the old version miss and rebuild, and cached
API-key entries, which carry the version they were built for, stop matching at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F

from resilience.connection import get_redis, key
from resilience.exceptions import RedisDisabled

log = logging.getLogger(__name__)

# Usage hashes outlive their day long enough for a late flush_usage to read them.
USAGE_TTL_SECONDS = 8 * 86_400

_PUBLISH_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then redis.call('SET', KEYS[1], new) end
return cur
"""


def flags_key(tenant_id: object, version: int) -> str:
    """Return the key of a tenant's evaluated flags at one cache version."""
    return key("flags", tenant_id, version)


def version_key(tenant_id: object) -> str:
    """Return the key holding a tenant's published cache version."""
    return key("flags", tenant_id, "ver")


def apikey_key(secret_hash: str) -> str:
    """Return the key of an API key's cached lookup entry."""
    return key("apikey", secret_hash)


def usage_key(tenant_id: object, day: str) -> str:
    """Return the key of a tenant's usage hash for one UTC day (`YYYYMMDD`)."""
    return key("usage", tenant_id, day)


def cache_ttl() -> int:
    return int(settings.TENANTS_CACHE_TTL)


def versions_bump(tenant_ids: Iterable[object]) -> dict:
    """Bump `cache_version` of the tenants in this transaction; publish on commit. Return id -> new version."""
    from tenants.models import Tenant

    ids = list(tenant_ids)
    if not ids:
        return {}
    Tenant.objects.filter(pk__in=ids).update(cache_version=F("cache_version") + 1)
    versions = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "cache_version"))
    transaction.on_commit(lambda: versions_publish(versions))
    return versions


def versions_publish(versions: dict) -> None:
    """Publish new cache versions to Redis and drop the documents they replace."""
    try:
        client = get_redis()
        publish = client.register_script(_PUBLISH_MAX)
        with client.pipeline(transaction=False) as pipe:
            for tenant_id, version in versions.items():
                publish(keys=[version_key(tenant_id)], args=[version], client=pipe)
                pipe.delete(flags_key(tenant_id, version - 1))
            pipe.execute()
    except (redis.RedisError, RedisDisabled) as exc:
        # The write is committed; cached entries expire within TENANTS_CACHE_TTL.
        log.warning("could not publish tenant cache versions %s: %s", versions, exc)


def apikey_forget(secret_hash: str) -> None:
    """Drop an API key's cached entry (after commit)."""
    try:
        get_redis().delete(apikey_key(secret_hash))
    except (redis.RedisError, RedisDisabled) as exc:
        log.warning("could not drop cached API key entry: %s", exc)
