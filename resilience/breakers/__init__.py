"""Circuit breakers: named pybreaker breakers shared through Redis, and one in-process breaker around Redis.

Imports: `breaker`, `registered_breakers`, `storage_degraded`, `redis_breaker` from here;
`breakers_snapshot`, `breaker_events` from `resilience.breakers.selectors`;
`breaker_force_open/_force_close/_reset` from `resilience.breakers.services`.
A tenant's upstream probe, `upstream_check`, is the tenants app's (`tenants.upstream`).
"""

from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import breaker, registered_breakers, storage_degraded

__all__ = [
    "breaker",
    "breaker_events",
    "breakers_snapshot",
    "redis_breaker",
    "registered_breakers",
    "storage_degraded",
]


def __getattr__(name):
    # Selectors import lazily: the cache client imports this package early.
    if name in ("breakers_snapshot", "breaker_events"):
        from resilience.breakers import selectors

        return getattr(selectors, name)
    raise AttributeError(name)
