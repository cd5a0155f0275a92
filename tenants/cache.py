"""Redis layout of the tenants app and the version stamps that invalidate it.

Each tenant has a `cache_version` in the database. Its evaluated flags and bootstrap
document live under `agentapi:flags:<tenant>:<cache_version>`; the version currently
published is `agentapi:flags:<tenant>:ver`. A write bumps `cache_version` inside its
transaction, records the publication in the outbox of the same transaction, and on
commit publishes the new version (only ever upwards) and deletes the previous document:
readers holding the old version miss and rebuild, and cached API-key entries, which
carry the version they were built for, stop matching at once. A publication Redis
missed stays in the outbox until delivered, and `CacheSync` keeps a process that may
have missed one from answering out of Redis until it has caught up.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from functools import cache

import redis
from django.conf import settings
from django.db.models import F

from resilience.breakers.process import redis_breaker
from resilience.connection import get_redis, key
from resilience.exceptions import RedisDisabled

log = logging.getLogger(__name__)

CACHE_TOPIC = "tenants.cache"
_RESYNC_BATCH = 1000
# Background retries of a failed publication: often enough that the first Redis reply after an
# outage carries it; bounded, since the outbox (not this list) is the durable record.
_REDELIVER_INTERVAL = 0.05
_REDELIVER_MAX = 1000

# Usage hashes outlive their day long enough for a late flush_usage to read them.
USAGE_TTL_SECONDS = 8 * 86_400

# A version that goes up is also an event on the tenant's change stream (GET /api/v1/stream).
_PUBLISH_MAX = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('SET', KEYS[1], new)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'version', new)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return cur
"""
# The change stream keeps about this many events per tenant, for an idle day: a client that
# resumes from an older Last-Event-ID still gets one change event and refetches.
STREAM_MAXLEN = 1000
STREAM_TTL_MS = 86_400_000


def flags_key(tenant_id: object, version: int) -> str:
    """Return the key of a tenant's evaluated flags at one cache version."""
    return key("flags", tenant_id, version)


def version_key(tenant_id: object) -> str:
    """Return the key holding a tenant's published cache version."""
    return key("flags", tenant_id, "ver")


def stream_key(tenant_id: object) -> str:
    """Return the key of a tenant's change stream (a capped Redis stream of version bumps)."""
    return key("stream", tenant_id)


def apikey_key(secret_hash: str) -> str:
    """Return the key of an API key's cached lookup entry under the current entry shape."""
    # Entries carry the plan limits, which fall back to RATE_LIMIT_*: new defaults, new keys.
    return key("apikey", entry_shape(), secret_hash)


def usage_key(tenant_id: object, day: str) -> str:
    """Return the key of a tenant's usage hash for one UTC day (`YYYYMMDD`)."""
    return key("usage", tenant_id, day)


def cache_ttl() -> int:
    return int(settings.TENANTS_CACHE_TTL)


def entry_shape() -> str:
    """Return a short digest of the settings that shape cached API-key entries (the RATE_LIMIT_* defaults)."""
    shape = (settings.RESILIENCE_RATE_LIMIT_PER_MINUTE, settings.RESILIENCE_RATE_LIMIT_BURST)
    return _shape_digest(shape)


@cache
def _shape_digest(shape: tuple) -> str:
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:8]


def versions_bump(tenant_ids: Iterable[object], *, forget: Iterable[str] = ()) -> dict:
    """Bump `cache_version` of the tenants and record its publication in this transaction's outbox.

    `forget` names API-key hashes whose cached entries are dropped with it. Return id -> new version.
    """
    from tenants.models import Tenant
    from tenants.services.outbox import outbox_record

    ids = list(tenant_ids)
    if not ids:
        return {}
    Tenant.objects.filter(pk__in=ids).update(cache_version=F("cache_version") + 1)
    versions = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "cache_version"))
    payload = {"versions": {str(pk): version for pk, version in versions.items()}, "apikeys": list(forget)}
    outbox_record(topic=CACHE_TOPIC, payload=payload)
    return versions


def _publish(client, versions: dict, apikeys: Iterable[str] = ()) -> None:
    # Versions only go up (_PUBLISH_MAX): an old or repeated delivery never undoes a newer one.
    # EVAL, not a registered script: one write and one read, no SCRIPT EXISTS/LOAD round trip,
    # so a retry queued during a pause is the first thing Redis runs when it resumes.
    with client.pipeline(transaction=False) as pipe:
        for tenant_id, version in versions.items():
            pipe.eval(
                _PUBLISH_MAX, 2, version_key(tenant_id), stream_key(tenant_id), version, STREAM_MAXLEN, STREAM_TTL_MS
            )
            pipe.delete(flags_key(tenant_id, int(version) - 1))
        for secret_hash in apikeys:
            pipe.delete(apikey_key(secret_hash))
        pipe.execute()


def invalidation_deliver(payload: dict) -> None:
    """Deliver one recorded cache invalidation to Redis (the outbox handler of CACHE_TOPIC); raise if it failed."""
    try:
        client = get_redis()
    except RedisDisabled:
        return  # no Redis, no cache to invalidate
    try:
        _publish(client, payload.get("versions", {}), payload.get("apikeys", ()))
    except redis.RedisError:
        # This process drains the outbox before it next serves from Redis, and meanwhile keeps
        # retrying in the background: other processes, which may have seen nothing, rely on it.
        cache_sync.behind = True
        cache_sync.redeliver(payload)
        raise


def versions_publish(versions: dict) -> None:
    """Publish new cache versions to Redis now, logging (not raising) a failure."""
    try:
        _publish(get_redis(), versions)
    except (redis.RedisError, RedisDisabled) as exc:
        log.warning("could not publish tenant cache versions %s: %s", versions, exc)


def versions_resync() -> int:
    """Publish every tenant's database cache version to Redis (Redis may have lost writes); return the count."""
    from tenants.models import Tenant

    client = get_redis()
    rows = Tenant.objects.order_by("pk").values_list("pk", "cache_version")
    count, batch = 0, {}
    for pk, version in rows.iterator(chunk_size=_RESYNC_BATCH):
        batch[pk] = version
        if len(batch) >= _RESYNC_BATCH:
            _publish(client, batch)
            count, batch = count + len(batch), {}
    if batch:
        _publish(client, batch)
    return count + len(batch)


class CacheSync:
    """Whether this process may answer from Redis without catching up first.

    Cached API-key entries are valid while their version equals the published one, so
    a missed publication (a write during an outage, a Redis restored from an old AOF)
    would let a stale entry answer. A process catches up before its next Redis read
    when it saw Redis fail (the breaker's failure count moved, or a delivery failed),
    and resyncs every version when Redis lost its scripts (a restart or failover).
    """

    def __init__(self) -> None:
        self.behind = False
        self.failures_seen = redis_breaker.failures_total
        self._lock = threading.Lock()
        self._undelivered: list[dict] = []
        self._retrying = False

    def due(self) -> bool:
        return self.behind or redis_breaker.failures_total != self.failures_seen

    def catch_up(self, *, resync: bool = False) -> None:
        """Deliver pending invalidations (and, with `resync`, republish every version); raise on failure."""
        from tenants.services.outbox import outbox_deliver_pending

        seen = redis_breaker.failures_total
        if resync:
            versions_resync()
        outbox_deliver_pending(topics=[CACHE_TOPIC])
        self.behind, self.failures_seen = False, seen

    def redeliver(self, payload: dict) -> None:
        """Retry a failed publication in the background until Redis takes it (the outbox row stays the record)."""
        with self._lock:
            if len(self._undelivered) < _REDELIVER_MAX:
                self._undelivered.append(payload)
            if self._retrying:
                return
            self._retrying = True
        threading.Thread(target=self._redeliver_loop, name="cache-redeliver", daemon=True).start()

    def _redeliver_loop(self) -> None:
        # No database here: the row is marked delivered by the next catch-up or deliver_outbox,
        # and a second delivery is harmless. The breaker is bypassed on purpose: this thread is
        # what closes the window in which another process could answer from a stale entry, so it
        # must try as soon as Redis answers, not when this process's breaker half-opens.
        while True:
            with self._lock:
                payloads = list(self._undelivered)
                if not payloads:
                    self._retrying = False
                    return
            try:
                client = redis.Redis(connection_pool=get_redis().connection_pool)
                for payload in payloads:
                    _publish(client, payload.get("versions", {}), payload.get("apikeys", ()))
            except redis.TimeoutError:
                continue  # Redis hung (a pause, a partition): keep a publication queued at all times
            except (redis.RedisError, RedisDisabled, OSError):
                time.sleep(_REDELIVER_INTERVAL)  # refused at once: do not spin
                continue
            with self._lock:
                del self._undelivered[: len(payloads)]


cache_sync = CacheSync()
