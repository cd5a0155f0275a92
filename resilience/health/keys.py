"""Every Redis key of the health checks (docs/redis-keys.md is generated from FAMILIES)."""

from __future__ import annotations

from resilience.connection import key
from resilience.keyfamily import KeyFamily

FAMILIES = (
    KeyFamily(
        pattern="health:write-probe",
        type="never created: `LPUSHX` to it is a write Redis refuses when full, read-only or `MISCONF`, "
        "and stores nothing",
        ttl="none (never created)",
        owner="`/readyz`, the Redis health page and `redis_health` (`resilience/health/writes.py`)",
        purpose="tells whether Redis accepts writes",
    ),
)


def write_probe_key() -> str:
    """Return the key the write probe names (never created: see resilience.health.writes)."""
    return key("health", "write-probe")
