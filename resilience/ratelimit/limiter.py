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
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if int(limit) < 1 or int(burst) < 0 or window <= 0 or int(cost) < 1:
            raise ValueError("limit >= 1, burst >= 0, window > 0 and cost >= 1 are required")
        if cost > burst + 1:
            raise ValueError(f"cost={cost} can never be admitted with burst={burst} (at most burst + 1 at once)")
        identity = str(identity)
        label = tenant_label(tenant)
        source, sha = hit_script()
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
        try:
            client = self._client_factory()
            try:
                result = client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                # First call on this server (or after a restart / SCRIPT FLUSH): EVAL loads it.
                result = client.eval(source, len(keys), *keys, *args)
        except (redis.exceptions.RedisError, RedisDisabled, OSError) as exc:
            return self._degraded(limit, window, f"{type(exc).__name__}: {exc}")
        if not isinstance(result, list | tuple) or len(result) < 4:
            # A wrapper that swallows errors returns None: same answer as an exception.
            return self._degraded(limit, window, f"unexpected reply {result!r}")
        allowed, remaining, reset_ms, retry_ms = (int(part) for part in result[:4])
        return Decision(
            allowed=bool(allowed),
            limit=int(limit),
            remaining=remaining,
            reset_after=reset_ms / 1000,
            retry_after=retry_ms / 1000,
            window=window,
        )

    def _degraded(self, limit: int, window: float, why: str) -> Decision:
        logger.warning("rate limiter cannot reach Redis (%s); RATE_LIMIT_FAIL_MODE=%s", why, self.fail_mode)
        if self.fail_mode == "open":
            return Decision(True, int(limit), int(limit), 0, 0, degraded=True, window=window)
        return Decision(False, int(limit), 0, window, min(window, 5), degraded=True, window=window)


def default_limiter() -> RateLimiter:
    """Return the process-wide limiter using the app's Redis client and settings."""
    return _default


_default = RateLimiter()
