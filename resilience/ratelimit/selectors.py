"""Reads of the limiter's state for the admin pages (from the index: no KEYS)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from resilience.connection import get_redis
from resilience.ratelimit.keys import (
    NO_TENANT,
    index_keys,
    state_key,
    tenant_index_pattern,
    tenant_label,
    tenant_of_index,
)
from resilience.ratelimit.limiter import SCOPES


@dataclass(frozen=True)
class IdentityState:
    """One identity the limiter currently holds state for."""

    scope: str
    tenant: str
    identity: str
    key: str
    limit: int
    burst: int
    window: float
    remaining: int  # requests admissible right now, back to back
    used: int  # capacity in use: burst + 1 - remaining
    limited: bool  # the next request would be refused
    denied: int  # refusals while this state lived
    retry_after: float  # seconds until the next request fits (0 when not limited)
    reset_after: float  # seconds until the allowance is full again (the key expires then)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _state(client, scope: str, tenant: str, identity: str, raw: dict, now_us: int) -> IdentityState | None:
    if not raw or b"t" not in raw:
        return None
    tat, limit, burst = int(raw[b"t"]), int(raw[b"l"]), int(raw[b"b"])
    window_ms = int(raw[b"w"])
    interval = -(-window_ms * 1000 // limit)
    tolerance = interval * (burst + 1)
    ahead = max(0, tat - now_us)
    remaining = max(0, (tolerance - ahead) // interval)
    return IdentityState(
        scope=scope,
        tenant=tenant,
        identity=identity,
        key=state_key(scope, tenant, identity),
        limit=limit,
        burst=burst,
        window=window_ms / 1000,
        remaining=remaining,
        used=burst + 1 - remaining,
        limited=remaining == 0,
        denied=int(raw.get(b"d", 0)),
        retry_after=max(0, ahead + interval - tolerance) / 1e6,
        reset_after=ahead / 1e6,
    )


def _server_now_us(client) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def _indexed_tenants(client) -> set[str]:
    names = client.scan_iter(match=tenant_index_pattern(), count=1000)
    return {tenant_of_index(name.decode() if isinstance(name, bytes) else name) for name in names}


# A listing cursor carries the position in the list of indexes in its low bits and that index's
# ZSCAN cursor above them; 0 starts and ends, as SCAN's does.
_POSITION_BITS = 16


def limited_identities(*, tenant=None, scope=None, text="", cursor=0, count=50, tenants=None):
    """Return (states, next_cursor) of live identities, filtered by tenant, scope and text (ZSCAN; cursor 0 = done).

    Identities of a tenant are listed from the tenant's index; without a tenant, from the
    limiter's buckets and the indexes of `tenants` (slugs; None: the tenant indexes found by SCAN).
    """
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    client = get_redis()
    if tenant is None and tenants is None:
        tenants = sorted(_indexed_tenants(client))
    indexes = index_keys(tenant, tenants=tenants or ())
    label = None if tenant is None else tenant_label(tenant)
    label_glob = "*" if label is None else _glob_escape(label)
    pattern = f"{scope or '*'}:{label_glob}:*{_glob_escape(text)}*"
    cursor = int(cursor)
    position, zcursor = cursor & ((1 << _POSITION_BITS) - 1), cursor >> _POSITION_BITS
    members: list = []
    # Bounded work per page: whole small indexes are read one after another, but the first
    # partial ZSCAN of a large one ends the page (as one ZSCAN page of one index did).
    while position < len(indexes) and len(members) < int(count):
        zcursor, found = client.zscan(indexes[position], cursor=zcursor, match=pattern, count=int(count))
        members.extend(found)
        if zcursor:
            break
        position += 1
    next_cursor = 0 if position >= len(indexes) else (int(zcursor) << _POSITION_BITS) | position
    now_us = _server_now_us(client)
    parsed = []
    for name, expiry_ms in members:
        if expiry_ms * 1000 <= now_us:
            continue  # expired: the next decision trims it
        name = name.decode() if isinstance(name, bytes) else name
        parsed.append(tuple(name.split(":", 2)))
    pipe = client.pipeline(transaction=False)
    for member_scope, member_tenant, identity in parsed:
        pipe.hgetall(state_key(member_scope, member_tenant, identity))
    states = []
    for (member_scope, member_tenant, identity), raw in zip(parsed, pipe.execute() if parsed else [], strict=True):
        state = _state(client, member_scope, member_tenant, identity, raw, now_us)
        if state is not None:
            states.append(state)
    return states, next_cursor


def top_limited(*, tenant, n=10) -> list[IdentityState]:
    """Return the tenant's n identities closest to (or past) their limit: most denials, then least remaining."""
    states, cursor = limited_identities(tenant=tenant, count=500)
    while cursor:
        more, cursor = limited_identities(tenant=tenant, cursor=cursor, count=500)
        states.extend(more)
    return sorted(states, key=lambda s: (-s.denied, s.remaining, s.identity))[:n]


def identity_state(scope: str, tenant, identity: str) -> IdentityState | None:
    """Return one identity's live state, or None when it has a full allowance."""
    client = get_redis()
    raw = client.hgetall(state_key(scope, tenant, identity))
    return _state(client, scope, tenant_label(tenant), str(identity), raw, _server_now_us(client))


def form_throttle_usage(*, ip=None, username=None) -> dict:
    """Return the login throttle's current usage for an IP and/or a username (see resilience.throttle)."""
    from resilience.throttle import form_throttle_lookup

    return form_throttle_lookup(ip=ip, username=username)


__all__ = [
    "NO_TENANT",
    "IdentityState",
    "form_throttle_usage",
    "identity_state",
    "limited_identities",
    "top_limited",
]
