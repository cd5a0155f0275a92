"""A circuit breaker kept in process memory, cheap enough to wrap every Redis command.

pybreaker holds its lock for the whole guarded call (`CircuitBreaker.call`), which
would serialise every Redis command of a threaded worker, and its shared state
lives in Redis, which is exactly what this breaker protects. This one takes its
lock only to change state, so the closed fast path is two attribute reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import redis
from django.conf import settings

from agentapi_admin import metrics
from resilience.exceptions import RedisUnavailable

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class Transition:
    """One state change of an in-process breaker."""

    at: float
    old: str
    new: str
    reason: str


class ProcessBreaker:
    """Trip after `fail_max` consecutive connection failures; fail fast while open."""

    failure_types: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

    def __init__(self, name: str, *, defaults: dict | None = None, **overrides) -> None:
        self.name = name
        self._overrides = dict(overrides)
        # Used instead of the CIRCUIT_BREAKER_* settings, below any CIRCUIT_BREAKER_OVERRIDES entry.
        self._defaults = dict(defaults or {})
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at: float | None = None  # time.time() of the last opening, for people
        self._opened_mono = 0.0
        self.attempts = 0  # calls let through to Redis
        self.rejected = 0  # calls refused without touching Redis
        # Every connection failure this process has seen, never reset: a change tells a reader
        # whose cached data depends on deliveries that some of them may have been missed.
        self.failures_total = 0
        self.transitions: deque[Transition] = deque(maxlen=20)

    # ------------------------------------------------------------ configuration
    def configure(self, **overrides) -> None:
        """Override fail_max / reset_timeout / success_threshold / enabled for this breaker."""
        unknown = set(overrides) - {"fail_max", "reset_timeout", "success_threshold", "enabled"}
        if unknown:
            raise ValueError(f"Unknown breaker option(s): {', '.join(sorted(unknown))}")
        self._overrides.update(overrides)

    def _option(self, name: str, setting: str):
        if name in self._overrides:
            return self._overrides[name]
        per_breaker = getattr(settings, "RESILIENCE_BREAKER_OVERRIDES", {}).get(self.name, {})  # exact name only
        if name in per_breaker:
            return per_breaker[name]
        return self._defaults.get(name, getattr(settings, setting))

    @property
    def enabled(self) -> bool:
        return bool(self._option("enabled", "RESILIENCE_BREAKER_ENABLED"))

    @property
    def fail_max(self) -> int:
        return int(self._option("fail_max", "RESILIENCE_BREAKER_FAILURE_THRESHOLD"))

    @property
    def reset_timeout(self) -> float:
        return float(self._option("reset_timeout", "RESILIENCE_BREAKER_TIMEOUT"))

    @property
    def success_threshold(self) -> int:
        return int(self._option("success_threshold", "RESILIENCE_BREAKER_SUCCESS_THRESHOLD"))

    # -------------------------------------------------------------------- state
    @property
    def state(self) -> str:
        """Return closed, open or half-open (open turns half-open once reset_timeout has passed)."""
        if self._state == OPEN and time.monotonic() - self._opened_mono >= self.reset_timeout:
            with self._lock:
                if self._state == OPEN:
                    self._set(HALF_OPEN, "reset timeout elapsed")
        return self._state

    @property
    def fail_counter(self) -> int:
        return self._failures

    @property
    def success_counter(self) -> int:
        return self._successes

    @property
    def opened_at(self) -> float | None:
        return self._opened_at

    @property
    def half_open_after(self) -> float | None:
        if self._state != OPEN or self._opened_at is None:
            return None
        return self._opened_at + self.reset_timeout

    def _set(self, new: str, reason: str) -> None:
        old, self._state = self._state, new
        self._successes = 0
        if new == OPEN:
            self._opened_at, self._opened_mono = time.time(), time.monotonic()
        if new == CLOSED:
            self._failures = 0
        self.transitions.appendleft(Transition(time.time(), old, new, reason))
        metrics.breaker_transition(self.name, new)
        log = logger.warning if new == OPEN else logger.info
        log("breaker %s: %s -> %s (%s)", self.name, old, new, reason)

    def reset(self) -> None:
        """Close the breaker and zero its counters."""
        with self._lock:
            if self._state != CLOSED:
                self._set(CLOSED, "reset")
            self._failures = self._successes = 0
            self.attempts = self.rejected = 0

    # --------------------------------------------------------------------- call
    def call(self, func, *args, **kwargs):
        """Run func through the breaker; raise RedisUnavailable at once while open."""
        if not self.enabled:
            try:
                return func(*args, **kwargs)
            except self.failure_types:
                self.failures_total += 1
                raise
        state = self.state
        if state == OPEN:
            self.rejected += 1
            raise RedisUnavailable(f"Redis circuit breaker {self.name!r} is open; not trying until it half-opens.")
        self.attempts += 1
        try:
            result = func(*args, **kwargs)
        except self.failure_types as exc:
            self._on_failure(exc)
            raise
        if state != CLOSED or self._failures:
            self._on_success()
        return result

    def _on_failure(self, exc: BaseException) -> None:
        with self._lock:
            self._failures += 1
            self.failures_total += 1
            if self._state == HALF_OPEN:
                self._set(OPEN, f"trial call failed: {type(exc).__name__}")
            elif self._state == CLOSED and self._failures >= self.fail_max:
                self._set(OPEN, f"{self._failures} consecutive failures: {type(exc).__name__}")

    def _on_success(self) -> None:
        with self._lock:
            self._failures = 0
            if self._state == HALF_OPEN:
                self._successes += 1
                if self._successes >= self.success_threshold:
                    self._set(CLOSED, f"{self._successes} successful trial calls")


# CIRCUIT_BREAKER_TIMEOUT (30s by default) suits slow upstreams; a Redis restart is
# over in seconds, and while this breaker stays open every request is served without
# Redis (fail mode, no sessions). 5s keeps outages cheap and recovery quick; set
# CIRCUIT_BREAKER_OVERRIDES=redis:reset_timeout=... to change it.
REDIS_BREAKER_RESET_TIMEOUT = 5.0
redis_breaker = ProcessBreaker("redis", defaults={"reset_timeout": REDIS_BREAKER_RESET_TIMEOUT})
