"""pybreaker's Redis storage, one namespace per breaker, degrading to process memory when Redis fails.

pybreaker's CircuitRedisStorage keys every breaker `pybreaker:<field>` unless given a
namespace, so two breakers silently share one state (danielfm/pybreaker#88); here the
namespace is always `<prefix>:cb:<breaker name>`. It also hides Redis errors behind
a log line and a fallback state; this subclass keeps a memory copy of every write and
answers from it when Redis (or the Redis breaker) fails, and says so: `degraded`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pybreaker import STATE_CLOSED, CircuitMemoryStorage, CircuitRedisStorage

from resilience.connection import decoded
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)


class ResilientRedisStorage(CircuitRedisStorage):
    """Breaker state in Redis under its own namespace, with a process-memory fallback."""

    def __init__(self, state: str, redis_object, namespace: str) -> None:
        # Skip CircuitRedisStorage.__init__: it writes to Redis and raises when Redis is down.
        self._name = "redis"
        self._redis = redis_object
        self._namespace_name = namespace
        self._fallback_circuit_state = STATE_CLOSED
        self._initial_state = str(state)
        self._cluster_mode = False
        self._memory = CircuitMemoryStorage(state)
        self.degraded = False
        self.last_error = ""
        self._attempt(lambda: self._initialize_redis_state(self._initial_state))

    def _attempt(self, operation, fallback=None):
        try:
            result = operation()
        except REDIS_UNAVAILABLE_ERRORS as exc:
            if not self.degraded:
                logger.warning("breaker storage %s degraded to process memory: %s", self._namespace_name, exc)
            self.degraded, self.last_error = True, f"{type(exc).__name__}: {exc}"
            return fallback() if fallback is not None else None
        if self.degraded:
            logger.info("breaker storage %s back on Redis", self._namespace_name)
        self.degraded, self.last_error = False, ""
        return result

    def key(self, field: str) -> str:
        return self._namespace(field)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> str:
        def read() -> str:
            raw = self._redis.get(self._namespace("state"))
            if raw is None:
                self._initialize_redis_state(self._fallback_circuit_state)
                return self._fallback_circuit_state
            return decoded(raw)

        return self._attempt(read, lambda: self._memory.state)

    @state.setter
    def state(self, state: str) -> None:
        self._memory.state = state
        self._attempt(lambda: self._redis.set(self._namespace("state"), str(state)))

    # --------------------------------------------------------------- counters
    def increment_counter(self) -> None:
        self._memory.increment_counter()
        self._attempt(lambda: self._redis.incr(self._namespace("fail_counter")))

    def reset_counter(self) -> None:
        self._memory.reset_counter()
        self._attempt(lambda: self._redis.set(self._namespace("fail_counter"), 0))

    def increment_success_counter(self) -> None:
        self._memory.increment_success_counter()
        self._attempt(lambda: self._redis.incr(self._namespace("success_counter")))

    def reset_success_counter(self) -> None:
        self._memory.reset_success_counter()
        self._attempt(lambda: self._redis.set(self._namespace("success_counter"), 0))

    @property
    def counter(self) -> int:
        return self._attempt(
            lambda: int(self._redis.get(self._namespace("fail_counter")) or 0), lambda: self._memory.counter
        )

    @property
    def success_counter(self) -> int:
        return self._attempt(
            lambda: int(self._redis.get(self._namespace("success_counter")) or 0), lambda: self._memory.success_counter
        )

    # -------------------------------------------------------------- opened at
    @property
    def opened_at(self) -> datetime | None:
        def read():
            raw = self._redis.get(self._namespace("opened_at"))
            return datetime.fromtimestamp(float(raw), tz=UTC) if raw else None

        return self._attempt(read, lambda: self._memory.opened_at)

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._memory.opened_at = now
        # A plain SET of epoch seconds with milliseconds (the parent keeps whole seconds, too
        # coarse for sub-second reset timeouts); the parent's WATCH/MULTI "set if greater"
        # costs three round trips, and the newest opening is the one that matters anyway.
        self._attempt(lambda: self._redis.set(self._namespace("opened_at"), f"{now.timestamp():.3f}"))

    # ----------------------------------------------------------------- forced
    @property
    def forced(self) -> str:
        """Return "open" or "closed" when an operator pinned the breaker, else ""."""
        raw = self._attempt(lambda: self._redis.get(self._namespace("forced")), lambda: self._memory_forced)
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    @forced.setter
    def forced(self, value: str) -> None:
        self._memory_forced = value or None
        if value:
            self._attempt(lambda: self._redis.set(self._namespace("forced"), value))
        else:
            self._attempt(lambda: self._redis.delete(self._namespace("forced")))

    _memory_forced: str | None = None
