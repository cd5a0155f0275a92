"""Every Redis key the automation app owns (docs/redis-keys.md)."""

from __future__ import annotations

from resilience.connection import key


def token_used_key(token_id: int) -> str:
    """Return the guard whose SET NX lets one request a minute record a token's last use."""
    return key("stafftoken", "used", token_id)


def idempotency_key(token_id: int, digest: str) -> str:
    """Return where the answer to a create sent with an Idempotency-Key is kept (digest: SHA-256 of the key)."""
    return key("idem", token_id, digest)
