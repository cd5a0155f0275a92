"""The version stamps that invalidate the tenants app's Redis caches (keys: tenants/keys.py).

Each tenant has a `cache_version` in the database. Its evaluated flags and bootstrap
document are cached with the version they were built at; the version currently
published has a key of its own in the tenant's slot. A write bumps `cache_version` inside its
transaction, records the publication in the outbox of the same transaction, and on
commit publishes the new version (only ever upwards) and deletes an older document:
readers holding the old version miss and rebuild, and cached API-key entries, which
carry the version they were built for, stop matching at once. A publication Redis
missed stays in the outbox until delivered, and `CacheSync` keeps a process that may
have missed one from answering out of Redis until it has caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import redis
from django.conf import settings
from django.db.models import F

from resilience import lua
from resilience.breakers.process import redis_breaker
from resilience.connection import get_redis, get_redis_without_breaker
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, RedisDisabled
from tenants.keys import USAGE_TTL_SECONDS, apikey_key, document_key, route_key, stream_key, version_key

log = logging.getLogger(__name__)

__all__ = ["CACHE_TOPIC", "USAGE_TTL_SECONDS", "cache_sync", "cache_ttl", "versions_bump", "versions_publish"]

CACHE_TOPIC = "tenants.cache"
_RESYNC_BATCH = 1000
# Background retries of a failed publication: often enough that the first Redis reply after an
# outage carries it; bounded, since the outbox (not this list) is the durable record.
_REDELIVER_INTERVAL = 0.05
_REDELIVER_MAX = 1000

# A version that goes up is also an event on the tenant's change stream (GET /api/v1/stream).
PUBLISH = lua.register("tenants.publish", Path(__file__).resolve().parent / "lua" / "publish.lua")
# The change stream keeps about this many events per tenant, for an idle day: a client that
# resumes from an older Last-Event-ID still gets one change event and refetches.
STREAM_MAXLEN = 1000
STREAM_TTL_MS = 86_400_000


def cache_ttl() -> int:
    return int(settings.TENANTS_CACHE_TTL)


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
    rows = Tenant.objects.filter(pk__in=ids).values_list("pk", "slug", "cache_version")
    versions = {pk: version for pk, _slug, version in rows}
    payload = {
        "versions": {str(pk): version for pk, version in versions.items()},
        # The keys carry the slug (their hash tag), and delivery may run without the database.
        "slugs": {str(pk): slug for pk, slug, _version in rows},
        "apikeys": list(forget),
    }
    outbox_record(topic=CACHE_TOPIC, payload=payload)
    return versions


def _publish(client, versions: dict, slugs: dict, apikeys: Iterable[str] = ()) -> None:
    # Versions only go up (PUBLISH): an old or repeated delivery never undoes a newer one.
    # Queued EVALSHAs, loaded first if Redis lost them, so a retry queued during a pause is
    # the first thing Redis runs when it resumes.
    calls = []
    for tenant_id, version in versions.items():
        slug = slugs[str(tenant_id)]
        keys = (version_key(slug, tenant_id), document_key(slug, tenant_id), stream_key(slug, tenant_id))
        calls.append((PUBLISH, keys, (version, STREAM_MAXLEN, STREAM_TTL_MS)))
    if calls:
        lua.run_many(client, calls)
    apikeys = list(apikeys)
    if apikeys:
        names = [route_key(h) for h in apikeys]
        names += [apikey_key(slug, h) for slug in slugs.values() for h in apikeys]
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.delete(name)  # one key per command: each may live in its own slot
            pipe.execute()


def _slugs(payload: dict) -> dict:
    """Return tenant id -> slug for a payload; rows recorded before slugs were carried look them up."""
    slugs = dict(payload.get("slugs") or {})
    missing = [pk for pk in payload.get("versions", {}) if str(pk) not in slugs]
    if missing:
        from tenants.models import Tenant

        slugs.update({str(pk): slug for pk, slug in Tenant.objects.filter(pk__in=missing).values_list("pk", "slug")})
    return slugs


def invalidation_deliver(payload: dict) -> None:
    """Deliver one recorded cache invalidation to Redis (the outbox handler of CACHE_TOPIC); raise if it failed."""
    try:
        client = get_redis()
    except RedisDisabled:
        return  # no Redis, no cache to invalidate
    payload = {**payload, "slugs": _slugs(payload)}
    # A tenant deleted since the row was recorded has no keys left to invalidate.
    payload["versions"] = {pk: v for pk, v in payload.get("versions", {}).items() if str(pk) in payload["slugs"]}
    try:
        _publish(client, payload["versions"], payload["slugs"], payload.get("apikeys", ()))
    except REDIS_UNAVAILABLE_ERRORS:
        # This process drains the outbox before it next serves from Redis, and meanwhile keeps
        # retrying in the background: other processes, which may have seen nothing, rely on it.
        cache_sync.behind = True
        cache_sync.redeliver(payload)
        raise


def versions_publish(versions: dict, slugs: dict) -> None:
    """Publish new cache versions (tenant id -> version, with tenant id -> slug) now, logging a failure."""
    try:
        _publish(get_redis(), versions, {str(pk): slug for pk, slug in slugs.items()})
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("could not publish tenant cache versions %s: %s", versions, exc)


def versions_resync() -> int:
    """Publish every tenant's database cache version to Redis (Redis may have lost writes); return the count."""
    from tenants.models import Tenant

    client = get_redis()
    rows = Tenant.objects.order_by("pk").values_list("pk", "slug", "cache_version")
    count, batch, slugs = 0, {}, {}
    for pk, slug, version in rows.iterator(chunk_size=_RESYNC_BATCH):
        batch[pk], slugs[str(pk)] = version, slug
        if len(batch) >= _RESYNC_BATCH:
            _publish(client, batch, slugs)
            count, batch, slugs = count + len(batch), {}, {}
    if batch:
        _publish(client, batch, slugs)
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
                client = get_redis_without_breaker()
                for payload in payloads:
                    _publish(client, payload["versions"], payload["slugs"], payload.get("apikeys", ()))
            except redis.TimeoutError:
                continue  # Redis hung (a pause, a partition): keep a publication queued at all times
            except REDIS_UNAVAILABLE_ERRORS:
                time.sleep(_REDELIVER_INTERVAL)  # refused at once: do not spin
                continue
            with self._lock:
                del self._undelivered[: len(payloads)]


cache_sync = CacheSync()
