"""Every Redis key of the tenants app (docs/redis-keys.md is generated from FAMILIES).

Everything the API gateway's script touches for one tenant carries the tenant's hash
tag `{t:<slug>}` (the limiter's tenant budget too, see resilience/ratelimit/keys.py),
so the script runs in one Redis Cluster slot. An API key's secret hash leads to its
tenant through a small route key, read before the tenant's slot is known.

A tenant's slug never changes once created (the admin shows it read-only), so a key
named after it stays the tenant's for good.
"""

from __future__ import annotations

import hashlib
from functools import cache

from django.conf import settings

from resilience.keyfamily import KeyFamily
from resilience.ratelimit.keys import tenant_label, tenant_tag
from tenants.models import PRODUCTION

FAMILIES = (
    KeyFamily(
        pattern="flags:{t:<tenant slug>}:<tenant id>:ver",
        type="string: the tenant's published `cache_version` (only ever goes up)",
        ttl="none (one small key per tenant)",
        owner="delivery of the `tenants.cache` outbox row of any write that changes what the API returns; "
        "republished for every tenant when the gateway finds its script missing (a restarted Redis)",
        purpose="makes stale documents and API-key entries unreachable; kept by `purge_tenant_cache` on purpose",
    ),
    KeyFamily(
        pattern="flags:{t:<tenant slug>}:<tenant id>:doc[:<environment>]",
        type="hash: the bootstrap document of the tenant's `production` environment (no suffix) or of another "
        "environment (`ver`, `body`, `etag`, `rules`, `keys`); all of a tenant's environments share its version",
        ttl="`TENANTS_CACHE_TTL` (default 300 s)",
        owner="the gateway script on a cache miss; `tenant_rules` for the portal and admin",
        purpose="answered only while its `ver` is the published one; the production document is deleted when a "
        "newer version is published, another environment's is unreachable from then on and expires; "
        "`purge_tenant_cache`",
    ),
    KeyFamily(
        pattern="apikey:{t:<tenant slug>}:<shape>:<sha256 hex>",
        type="hash: API-key entry (version, limits, scopes, expiry, last used)",
        ttl="`TENANTS_CACHE_TTL` (default 300 s)",
        owner="the gateway script on a miss",
        purpose="authenticates a key in the tenant's slot; `<shape>` is 8 hex digits of a digest of the "
        "`RATE_LIMIT_*` defaults, so new defaults mean new keys; deleted by `apikey_revoke`'s outbox row "
        "and `purge_tenant_cache`",
    ),
    KeyFamily(
        pattern="apikey:route:<sha256 hex>",
        type="string: `ok <tenant slug> <tenant id> [<environment>]` (none: production) or `deny <reason>`",
        ttl="`TENANTS_CACHE_TTL` for routes and refusals of known keys; 30 s for unknown keys, so a flood "
        "of random keys stays bounded",
        owner="the gateway on a miss (each process also keeps routes it has seen)",
        purpose="leads a secret to its tenant's slot before that slot is known; deleted with the entry",
    ),
    KeyFamily(
        pattern="stream:{t:<tenant slug>}:<tenant id>",
        type="stream of the tenant's version bumps (`version` field), capped at ~1,000 entries (`STREAM_MAXLEN`)",
        ttl="24 h after the last bump (`STREAM_TTL_MS`)",
        owner="the publish script, in the same call that raises the tenant's published version (so a repeated "
        "or old delivery adds nothing)",
        purpose="read by `GET /api/v1/stream` (`XREAD BLOCK`, one connection per open stream); the cap; TTL",
    ),
    KeyFamily(
        pattern="apikey-used:{t:<tenant slug>}:<tenant id>",
        type="hash: API key id -> epoch ms of its last use",
        ttl="8 days (`USAGE_TTL_SECONDS`), set when a key's field is created",
        owner="the gateway script, at most once a minute per key (no SQL write on any API request)",
        purpose="`flush_apikey_last_used` (a `run_maintenance` task) copies the times to `ApiKey.last_used_at`, "
        "never moving one backwards; the admin and portal show the newer of the two at once",
    ),
    KeyFamily(
        pattern="usage:{t:<tenant slug>}:<tenant id>:<YYYYMMDD>",
        type="hash metric -> absolute count for the day",
        ttl="8 days (`USAGE_TTL_SECONDS`), set once per day, so an unflushed day is not lost",
        owner="the gateway script, on every API request",
        purpose="`flush_usage` copies the absolute counts to `UsageDaily` (idempotent); TTL afterwards",
    ),
    KeyFamily(
        pattern="flag-asks:{t:<tenant slug>}:<tenant id>:<YYYYMMDD>",
        type="hash: asked flag keys (one key, or several joined by `,`; `*` = every flag) -> absolute count for "
        "the day; `#flushed` -> the generation of the flush that last read it",
        ttl="8 days (`USAGE_TTL_SECONDS`), set when a field is created; each flush sets it to 8 days after the "
        "day ends",
        owner="the gateway script, on a served request: `GET /api/v1/flags/<key>` counts the key, a request for "
        "every flag counts `*` once per process and tenant-day (not once per flag)",
        purpose="`flush_flag_asks` (a `run_maintenance` task) adds what grew since its last flush to "
        "`FlagAskDaily`, exactly once (a hash without its marker was lost and refilled: all of it is new); "
        "the stale-flag report reads the totals",
    ),
)

# Usage hashes outlive their day long enough for a late flush_usage to read them.
USAGE_TTL_SECONDS = 8 * 86_400


def _prefix() -> str:
    return settings.RESILIENCE_KEY_PREFIX


def tag(slug: str) -> str:
    """Return the hash tag of a tenant's slot."""
    return tenant_tag(tenant_label(slug))


# The version stamp and the document name the tenant's id as well as its slug: a tenant
# created later under a deleted tenant's slug never inherits its (higher) version.
def version_key(slug: str, tenant_id: object) -> str:
    """Return the key holding a tenant's published cache version."""
    return f"{_prefix()}:flags:{tag(slug)}:{tenant_id}:ver"


def document_key(slug: str, tenant_id: object, environment: str = PRODUCTION) -> str:
    """Return the key of the cached bootstrap document of a tenant's environment."""
    # Production keeps the name it had before environments: an upgrade invalidates no cache.
    suffix = "" if environment == PRODUCTION else f":{environment}"
    return f"{_prefix()}:flags:{tag(slug)}:{tenant_id}:doc{suffix}"


def apikey_key(slug: str, secret_hash: str) -> str:
    """Return the key of an API key's cached entry under the current entry shape."""
    # Entries carry the plan limits, which fall back to RATE_LIMIT_*: new defaults, new keys.
    return f"{_prefix()}:apikey:{tag(slug)}:{entry_shape()}:{secret_hash}"


def stream_key(slug: str, tenant_id: object) -> str:
    """Return the key of a tenant's change stream (a capped Redis stream of version bumps)."""
    return f"{_prefix()}:stream:{tag(slug)}:{tenant_id}"


def apikey_used_key(slug: str, tenant_id: object) -> str:
    """Return the key of a tenant's API-key last-use hash (key id -> epoch ms), flushed to `ApiKey.last_used_at`."""
    return f"{_prefix()}:apikey-used:{tag(slug)}:{tenant_id}"


def route_key(secret_hash: str) -> str:
    """Return the key leading an API key's hash to its tenant."""
    return f"{_prefix()}:apikey:route:{secret_hash}"


def usage_key(slug: str, tenant_id: object, day: str) -> str:
    """Return the key of a tenant's usage hash for one UTC day (`YYYYMMDD`)."""
    return f"{_prefix()}:usage:{tag(slug)}:{tenant_id}:{day}"


def flag_asks_key(slug: str, tenant_id: object, day: str) -> str:
    """Return the key of a tenant's asked-flags hash for one UTC day (`YYYYMMDD`)."""
    return f"{_prefix()}:flag-asks:{tag(slug)}:{tenant_id}:{day}"


def flag_asks_pattern() -> str:
    """Return the SCAN pattern of every asked-flags hash."""
    return f"{_prefix()}:flag-asks:*"


def flag_asks_parse(name: str) -> tuple[str, str, str] | None:
    """Return (slug, tenant id, day) of an asked-flags key, or None for a name of another shape."""
    head = f"{_prefix()}:flag-asks:{{t:"
    if not name.startswith(head):
        return None
    slug, sep, rest = name[len(head) :].partition("}:")
    parts = rest.split(":")
    if not sep or len(parts) != 2:
        return None
    return slug, parts[0], parts[1]


def usage_pattern() -> str:
    """Return the SCAN pattern of every usage hash."""
    return f"{_prefix()}:usage:*"


def usage_parse(name: str) -> tuple[str, str, str] | None:
    """Return (slug, tenant id, day) of a usage key, or None for a name of another shape."""
    head = f"{_prefix()}:usage:{{t:"
    if not name.startswith(head):
        return None
    slug, sep, rest = name[len(head) :].partition("}:")
    parts = rest.split(":")
    if not sep or len(parts) != 2:
        return None
    return slug, parts[0], parts[1]


def document_pattern(slug: str | None = None) -> str:
    """Return the SCAN pattern of one tenant's (or every tenant's) cached documents."""
    return f"{_prefix()}:flags:{{t:{slug or '*'}}}:*:doc*"


def apikey_pattern(slug: str | None = None) -> str:
    """Return the SCAN pattern of one tenant's (or every tenant's) cached API-key entries."""
    return f"{_prefix()}:apikey:{{t:{slug or '*'}}}:*"


def legacy_patterns() -> list[str]:
    """Return SCAN patterns of the tenants' keys as named before hash tags (removed by purge_tenant_cache)."""
    prefix = _prefix()
    # Old names put the tenant id (or the entry shape) right after the family: never a '{'.
    return [f"{prefix}:flags:[^{{]*", f"{prefix}:apikey:[^{{r]*"]


def entry_shape() -> str:
    """Return a short digest of the settings that shape cached API-key entries (the RATE_LIMIT_* defaults)."""
    shape = (settings.RESILIENCE_RATE_LIMIT_PER_MINUTE, settings.RESILIENCE_RATE_LIMIT_BURST)
    return _shape_digest(shape)


@cache
def _shape_digest(shape: tuple) -> str:
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:8]


def usage_legacy_key(tenant_id: object, day: str) -> str:
    """Return a usage hash's name from before hash tags (still read by flush_usage until it expires)."""
    return f"{_prefix()}:usage:{tenant_id}:{day}"


def legacy_usage_parse(name: str) -> tuple[str, str] | None:
    """Return (tenant id, day) of a usage key named before hash tags, or None."""
    head = f"{_prefix()}:usage:"
    parts = name[len(head) :].split(":") if name.startswith(head) else []
    if len(parts) != 2 or parts[0].startswith("{"):
        return None
    return parts[0], parts[1]
