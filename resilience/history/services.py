"""Take one history sample: Redis readings, refusal totals and breaker states, one stream entry each."""

from __future__ import annotations

import logging
import time

import redis

from resilience.breakers.events import events_key
from resilience.breakers.selectors import breakers_snapshot
from resilience.connection import decoded, get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.history import MAXLEN, counts_key, maintenance_key, series_key

logger = logging.getLogger(__name__)

STATE_CODES = {"closed": 0, "half-open": 1, "open": 2}
REDIS_FIELDS = ("used_memory", "maxmemory", "instantaneous_ops_per_sec", "connected_clients")
REDIS_TOTALS = ("keyspace_hits", "keyspace_misses", "evicted_keys")


def history_sample(*, now: float | None = None, interval: float = 60.0) -> dict:
    """Append one sample to each series for the current `interval` slot; return what was written.

    Entry ids are the slot's start in milliseconds: a slot already sampled (by another
    maintenance replica, or an earlier call) is left alone and reported as skipped.
    """
    now = time.time() if now is None else now
    slot_ms = int(now // interval * interval * 1000)
    client = get_redis()
    started = time.perf_counter()
    client.ping()
    latency_ms = (time.perf_counter() - started) * 1000
    info = client.info()
    readings = {
        "redis": {
            "latency_ms": f"{latency_ms:.3f}",
            **{name: info.get(name, 0) for name in REDIS_FIELDS},
            **{name: info.get(name, 0) for name in REDIS_TOTALS},
        },
        "ratelimit": {decoded(name): int(value) for name, value in (client.hgetall(counts_key()) or {}).items()}
        or {"denied:none": 0},
        "breakers": _breaker_fields(client, slot_ms, interval),
    }
    written: dict[str, dict | str] = {}
    for series, fields in readings.items():
        try:
            client.xadd(series_key(series), fields, id=f"{slot_ms}-0", maxlen=MAXLEN, approximate=False)
        except redis.exceptions.ResponseError as exc:
            if "equal or smaller" not in str(exc):
                raise
            written[series] = "skipped"
            continue
        written[series] = fields
    return written


def _breaker_fields(client, slot_ms: int, interval: float) -> dict:
    fields: dict = {}
    for state in breakers_snapshot():
        fields[f"state:{state.name}"] = STATE_CODES.get(state.state, 0)
        fields[f"failures:{state.name}"] = state.fail_counter
    # Transitions recorded since the previous slot began (the stream's ids are milliseconds).
    since = slot_ms - int(interval * 1000)
    fields["transitions"] = len(client.xrange(events_key(), min=f"{since}-0", max=f"{slot_ms}-0"))
    return fields


def maintenance_record_success(*, task: str, at: float | None = None) -> None:
    """Note that a maintenance task just succeeded (read by /metrics for lag alerts)."""
    try:
        get_redis().hset(maintenance_key(), task, f"{time.time() if at is None else at:.3f}")
    except REDIS_UNAVAILABLE_ERRORS as exc:
        logger.warning("maintenance: success of %s not recorded (%s)", task, type(exc).__name__)
