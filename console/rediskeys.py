"""docs/redis-keys.md, generated from the key families each owner's keys module declares.

`render()` returns the document; tests/docs/test_redis_keys.py fails when the file
differs and rewrites it when `UPDATE_REDIS_KEYS_DOC=1`. The console lists the
key modules because it sits above every app that owns keys.
"""

from __future__ import annotations

from importlib import import_module

from resilience.keyfamily import KeyFamily

KEY_MODULES = (
    "resilience.connection",
    "resilience.sessions.keys",
    "resilience.ratelimit.keys",
    "resilience.breakers.keys",
    "tenants.keys",
    "resilience.history.keys",
    "resilience.health.keys",
)
DOC_PREFIX = "agentapi"

_HEAD = """# Redis key contract

<!-- Generated from the FAMILIES of the modules below by console/rediskeys.py:
     edit those, then run UPDATE_REDIS_KEYS_DOC=1 pytest tests/docs/test_redis_keys.py. -->

Every key the app writes starts with `REDIS_KEY_PREFIX` (default `agentapi`). Each
owner builds every key it owns in one module ({modules}), which lists its families:
this table is generated from those lists, and a test fails when a key is built
anywhere else. One family per owner, so an operator can tell who wrote a key and a
command can `SCAN` one family at a time (never `KEYS`).

Every Lua script is registered with the one loader (`resilience/lua.py`) and receives
every key it touches in `KEYS`; the keys of one call share a hash tag (`{{...}}`), so on
Redis Cluster each call runs in one slot: `{{t:<tenant slug>}}` for everything the API
gateway touches for a tenant (its API-key entries, version, document, usage and rate
limit), `{{rl:<n>}}` (64 buckets) for limiter identities of no tenant, `{{cb}}` for
breaker transitions. A test runs every script as a Redis ACL user allowed only the keys
it declared.

The deployment's Redis runs with `maxmemory-policy noeviction`
([deployment.md](deployment.md#why-noeviction-and-not-the-seeds-allkeys-lru)): no
key below is ever evicted; they leave by TTL or as the last column says.

| family | type | TTL | written by | purpose, removed by |
|---|---|---|---|---|
"""

_TAIL = """
Keys named before hash tags (`agentapi:flags:<tenant uuid>:…`, `agentapi:apikey:<shape>:…`,
`agentapi:usage:<tenant uuid>:<YYYYMMDD>`, `agentapi:rl:<scope>:…`, `agentapi:rl:idx:…`,
`agentapi:stream:<tenant uuid>`, `agentapi:cb:events`, `agentapi:cb:<breaker>:seen:…`) are never read after
an upgrade: entries expire by TTL, `flush_usage` still adds the old usage counts, and
`purge_tenant_cache --all` deletes the tenants' old keys (the old published-version keys
have no TTL).

## Sizing

With `noeviction`, budget `REDIS_MAXMEMORY` for the worst case of the TTL'd
families plus the unbounded ones:

- sessions: concurrent sessions x ~1 KB (`SESSION_TTL` bounds how long each stays);
- rate-limit state: active identities per minute x ~150 bytes (+ index entries);
- cache: whatever the app caches within 300 s; usage: tenants x metrics x days kept.

`/admin/ops/redis/` shows used memory against `maxmemory`; alert at 80 %.
"""

# Written by the deployment tests against a real deployment, not by the app.
EXTRA = (
    KeyFamily(
        pattern="probe:raw",
        type="string",
        ttl="1 h",
        owner="deployment tests only (`tests/deploy/probe_urls.py`)",
        purpose="checks a deployment's Redis end to end; removed by TTL",
    ),
)


def families() -> list[tuple[str, KeyFamily]]:
    """Return (module, family) for every family the key modules declare, in their order."""
    return [(name, family) for name in KEY_MODULES for family in import_module(name).FAMILIES]


def _names(pattern: str) -> str:
    # "a, b" lists several keys of one family; "…:x" continues the previous name.
    parts = [part.strip() for part in pattern.split(", ")]
    return ", ".join(f"`{part}`" if part.startswith("…") else f"`{DOC_PREFIX}:{part}`" for part in parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """Return docs/redis-keys.md as the key modules describe it."""
    modules = ", ".join(f"`{name.replace('.', '/')}.py`" for name in KEY_MODULES)
    rows = [
        f"| {_names(f.pattern)} | {_cell(f.type)} | {_cell(f.ttl)} | {_cell(f.owner)} | {_cell(f.purpose)} |"
        for f in [family for _module, family in families()] + list(EXTRA)
    ]
    return _HEAD.format(modules=modules) + "\n".join(rows) + "\n" + _TAIL
