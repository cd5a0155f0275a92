"""Whether Redis accepts writes: one write that changes nothing, and what a refusal means."""

from __future__ import annotations

import redis

from resilience.exceptions import REDIS_WRITE_REFUSED_ERRORS, RedisWritesStopped
from resilience.health.keys import write_probe_key

_REASONS = {
    redis.exceptions.OutOfMemoryError: (
        "used memory is over maxmemory and the policy evicts nothing (noeviction): raise maxmemory or free memory"
    ),
    redis.exceptions.ReadOnlyError: (
        "the app is connected to a read-only replica: point REDIS_URL at the primary (or let Sentinel fail over)"
    ),
    RedisWritesStopped: (
        "its last background save failed and stop-writes-on-bgsave-error is yes: check the server's disk and log"
    ),
    redis.exceptions.MasterDownError: "this replica lost its primary and replica-serve-stale-data is no",
}


def write_refusal(execute) -> BaseException | None:
    """Send one write through `execute(*command)`; return the refusal, or None when Redis accepted it.

    LPUSHX on a list that does not exist is a write Redis checks like any other (refused
    when full, read-only or MISCONF) that stores nothing, so the probe leaves no key behind.
    """
    try:
        execute("LPUSHX", write_probe_key(), "1")
    except REDIS_WRITE_REFUSED_ERRORS as exc:
        return exc
    return None


def refusal_reason(exc: BaseException) -> str:
    """Return one sentence saying that Redis refuses writes, why, and what to do."""
    for cls, why in _REASONS.items():
        if isinstance(exc, cls):
            return f"Redis refuses writes ({type(exc).__name__}): {why}."
    return f"Redis refuses writes ({type(exc).__name__})."
