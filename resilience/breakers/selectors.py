"""Reads of breaker state for the ops pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from resilience.breakers.events import events_key
from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import breaker, registered_breakers
from resilience.connection import decoded, get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS


@dataclass(frozen=True)
class BreakerEvent:
    """One recorded transition."""

    id: str
    breaker: str
    old: str
    new: str
    at: datetime
    by: str
    reason: str = ""
    actor: str = ""


@dataclass(frozen=True)
class BreakerState:
    """A breaker as the ops pages show it."""

    name: str
    state: str  # closed, open, half-open
    forced: str  # "", "open" or "closed"
    fail_counter: int
    fail_max: int
    success_counter: int
    success_threshold: int
    reset_timeout: float
    opened_at: datetime | None
    half_open_after: datetime | None
    storage: str  # redis, memory (REDIS_ENABLE=false or degraded), process (the Redis breaker)
    degraded: bool
    recent: list[BreakerEvent] = field(default_factory=list)


def breaker_events(name: str | None = None, n: int = 20) -> list[BreakerEvent]:
    """Return the newest recorded transitions, of one breaker or all."""
    try:
        entries = get_redis().xrevrange(events_key(), count=n if name is None else 1000)
    except REDIS_UNAVAILABLE_ERRORS:
        return []
    events = []
    for entry_id, raw in entries or []:
        data = {decoded(k): decoded(v) for k, v in (raw or {}).items()}
        if name is not None and data.get("breaker") != name:
            continue
        events.append(
            BreakerEvent(
                id=decoded(entry_id or b""),
                breaker=data.get("breaker", ""),
                old=data.get("from", ""),
                new=data.get("to", ""),
                at=datetime.fromtimestamp(float(data.get("at", 0)), tz=UTC),
                by=data.get("by", ""),
                reason=data.get("reason", ""),
                actor=data.get("actor", ""),
            )
        )
        if len(events) >= n:
            break
    return events


def _redis_breaker_state() -> BreakerState:
    opened = redis_breaker.opened_at
    half_open = redis_breaker.half_open_after
    return BreakerState(
        name=redis_breaker.name,
        state=redis_breaker.state,
        forced="",
        fail_counter=redis_breaker.fail_counter,
        fail_max=redis_breaker.fail_max,
        success_counter=redis_breaker.success_counter,
        success_threshold=redis_breaker.success_threshold,
        reset_timeout=redis_breaker.reset_timeout,
        opened_at=datetime.fromtimestamp(opened, tz=UTC) if opened else None,
        half_open_after=datetime.fromtimestamp(half_open, tz=UTC) if half_open else None,
        storage="process",
        degraded=False,
        recent=_redis_breaker_events(),
    )


def _redis_breaker_events() -> list[BreakerEvent]:
    return [
        BreakerEvent(
            id="",
            breaker=redis_breaker.name,
            old=t.old,
            new=t.new,
            at=datetime.fromtimestamp(t.at, tz=UTC),
            by="this process",
            reason=t.reason,
        )
        for t in redis_breaker.transitions
    ]


def recent_transitions(n: int = 20) -> list[BreakerEvent]:
    """Return the newest transitions of every breaker, newest first.

    The shared stream lives in Redis, so the Redis breaker's own outage transitions can
    never reach it; this process's memory of them is merged in.
    """
    merged = [*breaker_events(n=n), *_redis_breaker_events()]
    return sorted(merged, key=lambda event: event.at, reverse=True)[:n]


def breaker_state(name: str) -> BreakerState:
    """Return one breaker's state."""
    if name == redis_breaker.name:
        return _redis_breaker_state()
    cb = breaker(name)
    storage = cb.storage
    state = cb.current_state
    opened_at = storage.opened_at
    # A breaker forced open stays open until an operator closes it: it has no half-open time.
    timed = opened_at and state == "open" and cb.forced != "open"
    half_open_after = opened_at + timedelta(seconds=cb.reset_timeout) if timed else None
    degraded = bool(getattr(storage, "degraded", False))
    return BreakerState(
        name=name,
        state=state,
        forced=cb.forced,
        fail_counter=cb.fail_counter,
        fail_max=cb.fail_max,
        success_counter=cb.success_counter,
        success_threshold=cb.success_threshold,
        reset_timeout=cb.reset_timeout,
        opened_at=opened_at,
        half_open_after=half_open_after,
        storage="memory" if degraded or not hasattr(storage, "degraded") else "redis",
        degraded=degraded,
        recent=breaker_events(name, n=5),
    )


def breakers_snapshot() -> list[BreakerState]:
    """Return every breaker's state: the in-process Redis breaker first, then the named ones."""
    return [_redis_breaker_state(), *(breaker_state(name) for name in registered_breakers())]
