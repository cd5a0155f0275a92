"""Distributed rate limiting: GCRA with burst in one Lua script (docs/rate-limiting.md)."""

from resilience.ratelimit.keys import state_key, tenant_label
from resilience.ratelimit.limiter import (
    LIBRARY,
    SCOPES,
    Decision,
    RateLimiter,
    default_limiter,
)
from resilience.ratelimit.responses import ratelimit_response

__all__ = [
    "LIBRARY",
    "SCOPES",
    "Decision",
    "RateLimiter",
    "default_limiter",
    "ratelimit_response",
    "state_key",
    "tenant_label",
]
