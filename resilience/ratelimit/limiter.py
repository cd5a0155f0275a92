"""The rate limiter: one atomic Lua decision per request, one Redis round trip.

Algorithm and guarantees: docs/rate-limiting.md. Keys (docs/redis-keys.md):
`<prefix>:rl:<scope>:<tenant or ->:<identity>` holds one identity's state (a hash
that expires when the identity is back to a full allowance);
`<prefix>:rl:idx:all` and `<prefix>:rl:idx:tenant:<tenant or ->` index the live
identities by expiry so the admin can list them without KEYS.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis
from django.conf import settings

from resilience.connection import get_redis, key
from resilience.exceptions import RedisDisabled

logger = logging.getLogger(__name__)

SCOPES = ("user", "ip", "tenant", "form")
NO_TENANT = "-"
LUA_DIR = Path(__file__).resolve().parent / "lua"


@cache
def lua_library() -> str:
    """Return the text defining `rate_limit(...)` and `rate_limit_index(...)`, for inclusion in other scripts."""
    return (LUA_DIR / "rate_limit.lua").read_text()


@cache
def hit_script() -> tuple[str, str]:
    """Return (source, sha1) of the entry script: the library followed by `hit.lua`."""
    source = lua_library() + "\n" + (LUA_DIR / "hit.lua").read_text()
    return source, hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - SHA1 is how Redis names scripts


def tenant_label(tenant) -> str:
    """Return the tenant segment of a key: the tenant's slug, the given string, or '-' for none."""
    if tenant is None or tenant == "":
        return NO_TENANT
    label = getattr(tenant, "slug", tenant)
    return str(label)


def state_key(scope: str, tenant, identity: str) -> str:
    """Return the Redis key holding one identity's state."""
    return key("rl", scope, tenant_label(tenant), identity)


def index_all_key() -> str:
    return key("rl", "idx", "all")


def index_tenant_key(tenant) -> str:
    return key("rl", "idx", "tenant", tenant_label(tenant))


@dataclass(frozen=True)
class Decision:
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
        self._clock_ms = clock_ms
        self._fail_mode = fail_mode

    @property
    def fail_mode(self) -> str:
        return self._fail_mode or settings.RESILIENCE_RATE_LIMIT_FAIL_MODE

    def hit(self, scope: str, tenant, identity: str, *, limit: int, burst: int, window: float = 60, cost: int = 1):
        """Count `cost` units for the identity and return the Decision."""
        return self.hit_many([(scope, tenant, identity, limit, burst, window, cost)])[0]

    def hit_many(self, checks: list[tuple]) -> list[Decision]:
        """Decide several (scope, tenant, identity, limit, burst, window, cost) checks in one round trip."""
        calls = [self._call_args(*check) for check in checks]
        source, sha = hit_script()
        try:
            client = self._client_factory()
            replies = self._send(client, sha, calls)
        except redis.exceptions.NoScriptError:
            # First call on this server (or after a restart / SCRIPT FLUSH): load it and resend.
            try:
                client.script_load(source)
                replies = self._send(client, sha, calls)
            except (redis.exceptions.RedisError, OSError) as exc:
                return [self._degraded(c[-1], f"{type(exc).__name__}: {exc}") for c in calls]
        except (redis.exceptions.RedisError, RedisDisabled, OSError) as exc:
            return [self._degraded(c[-1], f"{type(exc).__name__}: {exc}") for c in calls]
        return [self._decision(reply, call[-1]) for reply, call in zip(replies, calls, strict=True)]

    @staticmethod
    def _send(client, sha: str, calls: list[tuple]) -> list:
        if len(calls) == 1:
            keys, args, _ = calls[0]
            return [client.evalsha(sha, len(keys), *keys, *args)]
        pipe = client.pipeline(transaction=False)
        for keys, args, _ in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return pipe.execute()

    def _call_args(self, scope, tenant, identity, limit, burst, window=60, cost=1) -> tuple:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if int(limit) < 1 or int(burst) < 0 or window <= 0 or int(cost) < 1:
            raise ValueError("limit >= 1, burst >= 0, window > 0 and cost >= 1 are required")
        if cost > burst + 1:
            raise ValueError(f"cost={cost} can never be admitted with burst={burst} (at most burst + 1 at once)")
        identity = str(identity)
        label = tenant_label(tenant)
        keys = (state_key(scope, label, identity), index_all_key(), index_tenant_key(label))
        now = "" if self._clock_ms is None else repr(float(self._clock_ms()))
        args = (
            int(limit),
            int(burst),
            int(window * 1000),
            int(cost),
            f"{scope}:{label}:{identity}",
            f"{scope}:{identity}",
            now,
        )
        return keys, args, (int(limit), window)

    def _decision(self, reply, shape: tuple[int, float]) -> Decision:
        limit, window = shape
        if not isinstance(reply, list | tuple) or len(reply) < 4:
            # A wrapper that swallows errors returns None: same answer as an exception.
            return self._degraded(shape, f"unexpected reply {reply!r}")
        allowed, remaining, reset_ms, retry_ms = (int(part) for part in reply[:4])
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=remaining,
            reset_after=reset_ms / 1000,
            retry_after=retry_ms / 1000,
            window=window,
        )

    def _degraded(self, shape: tuple[int, float], why: str) -> Decision:
        limit, window = shape
        # While the Redis breaker is open every request lands here: log those quietly.
        log = logger.debug if "breaker" in why else logger.warning
        log("rate limiter cannot reach Redis (%s); RATE_LIMIT_FAIL_MODE=%s", why, self.fail_mode)
        if self.fail_mode == "open":
            return Decision(True, int(limit), int(limit), 0, 0, degraded=True, window=window)
        return Decision(False, int(limit), 0, window, min(window, 5), degraded=True, window=window)


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
