"""Admin ops pages, one module per page. Thin: parse input, call a selector or service, render HTML or JSON."""

from resilience.ops.views.breakers import breaker_action, breakers
from resilience.ops.views.ratelimits import ratelimit_reset, ratelimit_reset_tenant, ratelimits
from resilience.ops.views.redis import redis_health
from resilience.ops.views.sessions import session_revoke, sessions, sessions_revoke_all

__all__ = [
    "breaker_action",
    "breakers",
    "ratelimit_reset",
    "ratelimit_reset_tenant",
    "ratelimits",
    "redis_health",
    "session_revoke",
    "sessions",
    "sessions_revoke_all",
]
