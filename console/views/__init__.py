"""Admin ops pages, one module per page. Thin: parse input, call a selector or service, render HTML or JSON."""

from console.views.breakers import breaker_action, breakers
from console.views.ratelimits import ratelimit_reset, ratelimit_reset_tenant, ratelimits
from console.views.redis import redis_health
from console.views.sessions import session_revoke, sessions, sessions_revoke_all

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
