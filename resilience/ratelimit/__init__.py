"""Distributed rate limiting: GCRA with burst in one Lua script (docs/rate-limiting.md)."""

from resilience.ratelimit.limiter import (
    SCOPES,
    Decision,
    RateLimiter,
    default_limiter,
    hit_script,
    index_all_key,
    index_tenant_key,
    lua_library,
    state_key,
    tenant_label,
)
from resilience.ratelimit.responses import ratelimit_response

__all__ = [
    "SCOPES",
    "Decision",
    "RateLimiter",
    "default_limiter",
    "hit_script",
    "index_all_key",
    "index_tenant_key",
    "lua_library",
    "ratelimit_response",
    "state_key",
    "tenant_label",
]
