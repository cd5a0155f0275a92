"""Every Redis key of the rate limiter (docs/redis-keys.md is generated from FAMILIES).

One identity's state and the index entry that lists it share one hash tag, so the
limiter's script touches a single Redis Cluster slot:

- an identity of a tenant lives in the tenant's slot `{t:<tenant slug>}`, beside the
  tenant's API-key entries, document and usage (the API gateway spends the tenant's
  budget in the same script that authenticates it);
- an identity of no tenant (an IP, an anonymous form) lives in one of BUCKETS slots
  `{rl:<n>}`, n chosen by a hash of the identity, so no index is one hot key.

Each slot has one index, a sorted set of `<scope>:<tenant>:<identity>` members scored
by when their state expires: the admin lists a tenant from its own index and
everything from the BUCKETS indexes plus the tenants' ones.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from django.conf import settings

from resilience.keyfamily import KeyFamily

BUCKETS = 64
NO_TENANT = "-"
_FORBIDDEN = frozenset(":{}")

FAMILIES = (
    KeyFamily(
        pattern="rl:{t:<tenant slug>}:<scope>:<tenant slug>:<identity>",
        type="hash (`t` theoretical arrival time µs, `l`/`b`/`w` limits applied, `d` denials, `ix` expiry µs)",
        ttl="until `ix`: at least until the identity is back to a full allowance, at most "
        "2 x (burst + 1) x window / limit after the last renewal",
        owner="`RateLimiter.hit` and the API gateway script, one Lua call per decision",
        purpose="one identity's limiter state within a tenant, in the tenant's slot; removed by TTL, "
        "`ratelimit_reset_identity` / `ratelimit_reset_tenant`, `reset_ratelimits`",
    ),
    KeyFamily(
        pattern="rl:{rl:<n>}:<scope>:-:<identity>",
        type="hash (as above)",
        ttl="as above",
        owner="`RateLimiter.hit` (the gateway spends the client address's `ip` budget through it)",
        purpose=f"limiter state of an identity of no tenant (IP, form, user); n = CRC32 of the member mod {BUCKETS}",
    ),
    KeyFamily(
        pattern="rlidx:{t:<tenant slug>}, rlidx:{rl:<n>}",
        type="sorted set: `<scope>:<tenant>:<identity>` scored by its state key's expiry (ms)",
        ttl="as long as its longest-lived member",
        owner="the same Lua call, only when a state key's expiry is renewed (once per tolerance period)",
        purpose="lists live identities for the admin without KEYS: one index per slot, so none is a "
        "cluster-wide hot key; expired members are trimmed on each renewal",
    ),
)


class CallKeys(NamedTuple):
    """The keys and index member of one limiter decision."""

    state: str
    index_key: str
    member: str


def tenant_label(tenant) -> str:
    """Return the tenant segment of a key: the tenant's slug, the given string, or '-' for none."""
    if tenant is None or tenant == "":
        return NO_TENANT
    label = str(getattr(tenant, "slug", tenant))
    if _FORBIDDEN & set(label):
        raise ValueError(f"A tenant label cannot contain ':', '{{' or '}}' (keys split on them): {label!r}")
    return label


def tenant_tag(label: str) -> str:
    """Return the hash tag of a tenant's slot, shared by every key of the tenant that a script touches."""
    return "{t:" + label + "}"


def member(scope: str, label: str, identity: str) -> str:
    """Return an identity's member in its slot's index."""
    return f"{scope}:{label}:{identity}"


def slot_tag(label: str, identity_member: str) -> str:
    """Return the hash tag of an identity: its tenant's slot, or a bucket chosen by the member's hash."""
    if label != NO_TENANT:
        return tenant_tag(label)
    return "{rl:" + str(zlib.crc32(identity_member.encode()) % BUCKETS) + "}"


def call_keys(scope: str, tenant, identity: str) -> CallKeys:
    """Return the state key, index key and index member of one identity."""
    label = tenant_label(tenant)
    name = member(scope, label, str(identity))
    tag = slot_tag(label, name)
    prefix = settings.RESILIENCE_KEY_PREFIX
    return CallKeys(f"{prefix}:rl:{tag}:{name}", f"{prefix}:rlidx:{tag}", name)


def state_key(scope: str, tenant, identity: str) -> str:
    """Return the Redis key holding one identity's state."""
    return call_keys(scope, tenant, identity).state


def tenant_index_key(tenant) -> str:
    """Return the index listing a tenant's identities."""
    return f"{settings.RESILIENCE_KEY_PREFIX}:rlidx:{tenant_tag(tenant_label(tenant))}"


def bucket_index_keys() -> list[str]:
    """Return the BUCKETS indexes of identities of no tenant."""
    prefix = settings.RESILIENCE_KEY_PREFIX
    return [f"{prefix}:rlidx:{{rl:{n}}}" for n in range(BUCKETS)]


def index_keys(tenant=None, *, tenants=()) -> list[str]:
    """Return the indexes to list: one tenant's (or the buckets for '-'), else the buckets and `tenants`'."""
    if tenant is not None:
        label = tenant_label(tenant)
        return bucket_index_keys() if label == NO_TENANT else [tenant_index_key(label)]
    return bucket_index_keys() + [tenant_index_key(t) for t in tenants]


def state_pattern(scope_glob: str = "*", label_glob: str = "*") -> str:
    """Return a SCAN pattern for state keys of a scope and tenant (globs already escaped)."""
    return f"{settings.RESILIENCE_KEY_PREFIX}:rl:{{*}}:{scope_glob}:{label_glob}:*"


def index_pattern() -> str:
    """Return a SCAN pattern for every limiter index."""
    return f"{settings.RESILIENCE_KEY_PREFIX}:rlidx:*"


def tenant_index_pattern() -> str:
    """Return a SCAN pattern for the indexes of every tenant's slot."""
    return f"{settings.RESILIENCE_KEY_PREFIX}:rlidx:{{t:*}}"


def tenant_of_index(name: str) -> str:
    """Return the tenant label of a tenant's index key."""
    head = f"{settings.RESILIENCE_KEY_PREFIX}:rlidx:{{t:"
    if not (name.startswith(head) and name.endswith("}")):
        raise ValueError(f"not a tenant's limiter index: {name!r}")
    return name[len(head) : -1]
