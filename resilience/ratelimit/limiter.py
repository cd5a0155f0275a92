"""The rate limiter: one atomic Lua decision per request, one Redis round trip.

Algorithm and guarantees: docs/rate-limiting.md. Keys: resilience/ratelimit/keys.py
(one identity's state hash and its slot's index share a hash tag).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import redis
from django.conf import settings

from resilience import lua
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.ratelimit.keys import NO_TENANT, call_keys, state_key, tenant_label

logger = logging.getLogger(__name__)

SCOPES = ("user", "ip", "tenant", "form")
LUA_DIR = Path(__file__).resolve().parent / "lua"
LIBRARY = LUA_DIR / "rate_limit.lua"
HIT = lua.register("ratelimit.hit", LUA_DIR / "hit.lua", include=[LIBRARY])
REFUND = lua.register("ratelimit.refund", LUA_DIR / "refund.lua")
PEEK = lua.register("ratelimit.peek", LUA_DIR / "peek.lua", include=[LIBRARY])

__all__ = ["NO_TENANT", "SCOPES", "Decision", "RateLimiter", "default_limiter", "state_key", "tenant_label"]


class Decision(NamedTuple):
    """The limiter's answer for one request; times are in seconds."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    # True when Redis could not be asked and RATE_LIMIT_FAIL_MODE decided.
    degraded: bool = False
    window: float = 60

    def headers(self) -> dict[str, str]:
        """Return the RateLimit-Limit/-Remaining/-Reset headers, plus Retry-After when denied."""
        if self.degraded:
            # Redis was not asked: there are no counts to report, only when to come back.
            return {} if self.allowed else {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class RateLimiter:
    """Decide requests against the shared limiter state in Redis."""

    def __init__(
        self,
        client_factory: Callable[[], redis.Redis] | None = None,
        *,
        clock_ms: Callable[[], float] | None = None,
        fail_mode: str | None = None,
    ) -> None:
        # clock_ms=None means Redis server TIME: one clock for every app replica.
        self._client_factory = client_factory or get_redis
        self._client: redis.Redis | None = None
        self._clock_ms = clock_ms
        self._fail_mode = fail_mode

    def _redis(self) -> redis.Redis:
        # Resolved once: django-redis' lookup (caches[alias], get_client) costs more per
        # request than the script does. The client's pool survives outages and forks.
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @property
    def fail_mode(self) -> str:
        return self._fail_mode or settings.RESILIENCE_RATE_LIMIT_FAIL_MODE

    def hit(self, scope: str, tenant, identity: str, *, limit: int, burst: int, window: float = 60, cost: int = 1):
        """Count `cost` units for the identity and return the Decision."""
        keys, args, shape = self._call_args(scope, tenant, identity, limit, burst, window, cost)
        if not settings.RESILIENCE_REDIS_ENABLED and self._client_factory is get_redis:
            return _local.decide(keys[0], args)
        try:
            reply = HIT.run(self._redis(), keys, args)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            return self._degraded(shape, f"{type(exc).__name__}: {exc}")
        return self._decision(reply, shape)

    def peek(self, scope: str, tenant, identity: str, *, limit: int, burst: int, window: float = 60) -> Decision:
        """Return whether one more request would be admitted, counting nothing (Redis errors raise)."""
        keys, args, shape = self._call_args(scope, tenant, identity, limit, burst, window, 1)
        allowed, reset_ms, retry_ms = PEEK.run(self._redis(), keys[:1], (*args[:3], args[4]))
        return Decision(allowed == 1, shape[0], 0, reset_ms / 1000, retry_ms / 1000, False, window)

    def hit_many(self, checks: list[tuple]) -> list[Decision]:
        """Decide several (scope, tenant, identity, limit, burst, window, cost) checks in one round trip."""
        calls = [self._call_args(*check) for check in checks]
        if not settings.RESILIENCE_REDIS_ENABLED and self._client_factory is get_redis:
            return [_local.decide(keys[0], args) for keys, args, _ in calls]
        try:
            replies = lua.run_many(self._redis(), [(HIT, keys, args) for keys, args, _ in calls])
        except REDIS_UNAVAILABLE_ERRORS as exc:
            return [self._degraded(c[-1], f"{type(exc).__name__}: {exc}") for c in calls]
        return [self._decision(reply, call[-1]) for reply, call in zip(replies, calls, strict=True)]

    def refund_many(self, checks: list[tuple]) -> None:
        """Give back what hit_many() counted for the same checks (one pipelined round trip; errors are logged)."""
        calls = [self._call_args(*check) for check in checks]
        if not settings.RESILIENCE_REDIS_ENABLED and self._client_factory is get_redis:
            for keys, args, _ in calls:
                _local.refund(keys[0], args)
            return
        # KEYS[1] only; ARGV limit, window_ms, cost, now_ms (hit's args without the burst).
        refunds = [(REFUND, (keys[0],), (args[0], *args[2:5])) for keys, args, _ in calls]
        try:
            lua.run_many(self._redis(), refunds)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            # A lost refund only makes the limiter stricter for a while: never fail the request for it.
            logger.warning("rate limiter could not refund (%s: %s)", type(exc).__name__, exc)

    def _call_args(self, scope, tenant, identity, limit, burst, window=60, cost=1) -> tuple:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if int(limit) < 1 or int(burst) < 0 or window <= 0 or int(cost) < 1:
            raise ValueError("limit >= 1, burst >= 0, window > 0 and cost >= 1 are required")
        if cost > burst + 1:
            raise ValueError(f"cost={cost} can never be admitted with burst={burst} (at most burst + 1 at once)")
        state, index, name = call_keys(scope, tenant, identity)
        limit = int(limit)
        now = "" if self._clock_ms is None else repr(float(self._clock_ms()))
        args = (limit, int(burst), int(window * 1000), int(cost), now, name)
        return (state, index), args, (limit, window)

    def _decision(self, reply, shape: tuple[int, float]) -> Decision:
        limit, window = shape
        if not isinstance(reply, list | tuple) or len(reply) < 4:
            # A wrapper that swallows errors returns None: same answer as an exception.
            return self._degraded(shape, f"unexpected reply {reply!r}")
        return Decision(reply[0] == 1, limit, int(reply[1]), reply[2] / 1000, reply[3] / 1000, False, window)

    def _degraded(self, shape: tuple[int, float], why: str) -> Decision:
        limit, window = shape
        # While the Redis breaker is open every request lands here: log those quietly.
        log = logger.debug if "breaker" in why else logger.warning
        log("rate limiter cannot reach Redis (%s); RATE_LIMIT_FAIL_MODE=%s", why, self.fail_mode)
        if self.fail_mode == "open":
            return Decision(True, int(limit), int(limit), 0, 0, degraded=True, window=window)
        return Decision(False, int(limit), 0, window, min(window, 5), degraded=True, window=window)


class _ProcessGCRA:
    """The same decision in process memory, for REDIS_ENABLE=false (limits then hold per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}

    def decide(self, key: str, args: tuple) -> Decision:
        limit, burst, window_ms, cost = (int(part) for part in args[:4])
        now = round(float(args[4]) * 1000) if args[4] != "" else time.time_ns() // 1000
        interval = -(-window_ms * 1000 // limit)
        tolerance = interval * (burst + 1)
        with self._lock:
            if len(self._tat) > 100_000:  # drop identities back to a full allowance
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + cost * interval
            if new_tat - now > tolerance:
                return Decision(
                    False, limit, 0, (tat - now) / 1e6, (new_tat - tolerance - now) / 1e6, False, window_ms / 1000
                )
            self._tat[key] = new_tat
        remaining = (tolerance - (new_tat - now)) // interval
        return Decision(True, limit, remaining, (new_tat - now) / 1e6, 0.0, False, window_ms / 1000)

    def refund(self, key: str, args: tuple) -> None:
        limit, _burst, window_ms, cost = (int(part) for part in args[:4])
        now = round(float(args[4]) * 1000) if args[4] != "" else time.time_ns() // 1000
        interval = -(-window_ms * 1000 // limit)
        with self._lock:
            tat = self._tat.get(key)
            if tat is not None and tat > now:
                self._tat[key] = max(now, tat - cost * interval)


_local = _ProcessGCRA()


def most_restrictive(decisions: list[Decision]) -> Decision | None:
    """Return the decision to report: a denial first (longest wait), else the one with the fewest remaining."""
    if not decisions:
        return None
    denied = [d for d in decisions if not d.allowed]
    if denied:
        return max(denied, key=lambda d: d.retry_after)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_after))


def default_limiter() -> RateLimiter:
    """Return the process-wide limiter using the app's Redis client and settings."""
    return _default


_default = RateLimiter()
