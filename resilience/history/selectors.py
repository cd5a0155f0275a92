"""Read the history series for the ops pages and their JSON twins; keep the last good read for outages."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from resilience.connection import decoded, get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.history import SERIES, maintenance_key, series_key

WINDOW_SECONDS = 24 * 3600

_lock = threading.Lock()
_last_good: dict[str, dict] = {}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def history_series(series: str, *, now: float | None = None) -> dict:
    """Return {"series", "points", "stale", "error", "read_at"}: the last 24 h of one series.

    When Redis cannot be read, the last series this process read is returned with
    `stale` true and the error, so a page can say Redis is down and still draw it.
    """
    if series not in SERIES:
        raise ValueError(f"series must be one of {', '.join(SERIES)}, not {series!r}")
    now = time.time() if now is None else now
    since_ms = int((now - WINDOW_SECONDS) * 1000)
    try:
        entries = get_redis().xrange(series_key(series), min=f"{since_ms}-0", max="+")
    except REDIS_UNAVAILABLE_ERRORS as exc:
        with _lock:
            last = _last_good.get(series)
        result = dict(last) if last else {"series": series, "points": [], "read_at": None}
        return {**result, "stale": True, "error": f"{type(exc).__name__}: {exc}"}
    raw = [(int(decoded(entry_id or b"").split("-")[0]), _decode(fields or {})) for entry_id, fields in entries or []]
    result = {"series": series, "points": _DERIVE[series](raw), "read_at": _iso(int(now * 1000))}
    with _lock:
        _last_good[series] = result
    return {**result, "stale": False, "error": None}


def _decode(fields: dict) -> dict:
    return {k.decode(): float(v) for k, v in fields.items()}


def _delta(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    # A total that went down was reset (Redis restarted, hash expired): count from zero.
    return current - previous if current >= previous else current


def _redis_points(raw: list) -> list[dict]:
    points, previous = [], None
    for ms, fields in raw:
        hits = misses = None
        if previous is not None:
            hits = _delta(fields.get("keyspace_hits"), previous.get("keyspace_hits"))
            misses = _delta(fields.get("keyspace_misses"), previous.get("keyspace_misses"))
        lookups = (hits or 0) + (misses or 0)
        points.append(
            {
                "t": _iso(ms),
                "latency_ms": fields.get("latency_ms"),
                "used_memory": fields.get("used_memory"),
                "maxmemory": fields.get("maxmemory"),
                "ops_per_sec": fields.get("instantaneous_ops_per_sec"),
                "connected_clients": fields.get("connected_clients"),
                "hit_ratio": round(hits / lookups, 4) if hits is not None and lookups else None,
                "evicted": _delta(fields.get("evicted_keys"), previous and previous.get("evicted_keys")),
            }
        )
        previous = fields
    return points


def _ratelimit_points(raw: list) -> list[dict]:
    scopes = sorted({name.split(":", 1)[1] for _, fields in raw for name in fields if name.startswith("denied:")})
    scopes = [scope for scope in scopes if scope != "none"]
    points, previous = [], None
    for ms, fields in raw:
        point: dict = {"t": _iso(ms)}
        for scope in scopes:
            name = f"denied:{scope}"
            if previous is None:
                point[scope] = None
            else:
                point[scope] = _delta(fields.get(name, 0.0), previous.get(name, 0.0))
        points.append(point)
        previous = fields
    return points


def _breaker_points(raw: list) -> list[dict]:
    points = []
    for ms, fields in raw:
        point: dict = {"t": _iso(ms), "transitions": fields.get("transitions", 0.0), "state": {}, "failures": {}}
        for name, value in fields.items():
            kind, _, breaker = name.partition(":")
            if kind in ("state", "failures") and breaker:
                point[kind][breaker] = value
        points.append(point)
    return points


_DERIVE = {"redis": _redis_points, "ratelimit": _ratelimit_points, "breakers": _breaker_points}


def maintenance_successes() -> dict[str, float]:
    """Return each maintenance task's last success (epoch seconds); raise the Redis error when unreadable."""
    raw = get_redis().hgetall(maintenance_key()) or {}
    return {decoded(k): float(v) for k, v in raw.items()}
