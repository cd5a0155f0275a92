"""The shape of a Redis key family, as each owner's `keys` module lists it.

Every module that builds Redis keys declares the families it owns in a `FAMILIES`
tuple; docs/redis-keys.md is generated from them (`console.rediskeys`), and a test
fails when a key literal appears outside those modules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFamily:
    """One family of Redis keys: its pattern after `<REDIS_KEY_PREFIX>:`, type, TTL, owner and purpose."""

    pattern: str
    type: str
    ttl: str
    owner: str
    purpose: str
