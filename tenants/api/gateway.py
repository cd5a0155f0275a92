"""The service API's request gate: one Redis round trip authenticates, limits, counts and answers.

`gateway_call()` runs `lua/gateway.lua` (prefixed with the rate limiter's own Lua
library) with EVALSHA, on the keys of the API key's tenant, all in the tenant's slot
(tenants/keys.py). The tenant comes from the key's route, which each process keeps
once seen: on a warm cache that single script is the whole request's I/O, no SQL and
one Redis call. On a miss it builds the API-key entry and the tenant's document from
the database and runs the same script once more with them attached. A refused request
spends the client address's budget through the limiter afterwards.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils import timezone

from agentapi_admin import metrics
from resilience import lua
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, REDIS_WRITE_REFUSED_ERRORS, RedisDisabled
from resilience.ratelimit import LIBRARY, Decision, default_limiter
from resilience.ratelimit.keys import call_keys
from resilience.ratelimit.policy import limits_for
from tenants.cache import cache_sync, cache_ttl
from tenants.keys import (
    USAGE_TTL_SECONDS,
    apikey_key,
    apikey_used_key,
    document_key,
    flag_asks_key,
    route_key,
    usage_key,
    version_key,
)
from tenants.models import PRODUCTION, ApiKey
from tenants.selectors import TenantDocument, document_fields, tenant_document_build
from tenants.services.apikeys import apikey_hash
from tenants.services.outbox import OutboxUndelivered
from tenants.services.usage import usage_adopt_legacy

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
GATEWAY = lua.register("tenants.gateway", LUA_DIR / "gateway.lua", include=[LIBRARY])
WINDOW_SECONDS = 60
UNKNOWN_KEY_TTL = 30
ROUTES_KEPT = 100_000
# Outcomes paid for by the client address's budget (everything refused before the tenant's limit).
# Redis cannot serve the call, or lacks writes the outbox could not deliver: answer from the database.
_REDIS_OR_OUTBOX_ERRORS: tuple[type[BaseException], ...] = (*REDIS_UNAVAILABLE_ERRORS, OutboxUndelivered)
_ADDRESS_PAYS = ("unknown", "revoked", "expired", "not_serving", "scope")


class RouteCache:
    """The routes (secret hash -> tenant slug, id and environment) this process has seen, least recent dropped first.

    A route only says which slot to read: the entry there decides, so a stale route costs
    one miss, never a wrong answer. Each route also keeps the script's key names for the
    day it last served (built from settings, so a settings change forgets them).
    """

    def __init__(self, size: int = ROUTES_KEPT) -> None:
        self._size = size
        self._routes: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        self._keys: dict[str, tuple] = {}  # secret hash -> (route, day, keys, limiter index member)
        self._lock = threading.Lock()

    def get(self, secret_hash: str) -> tuple[str, str, str] | None:
        route = self._routes.get(secret_hash)
        if route is not None:
            with self._lock:
                if secret_hash in self._routes:
                    self._routes.move_to_end(secret_hash)
        return route

    def put(self, secret_hash: str, slug: str, tenant_id: str, environment: str = PRODUCTION) -> None:
        with self._lock:
            self._routes[secret_hash] = (slug, tenant_id, environment)
            self._routes.move_to_end(secret_hash)
            while len(self._routes) > self._size:
                dropped, _ = self._routes.popitem(last=False)
                self._keys.pop(dropped, None)

    def keys(self, secret_hash: str, route: tuple[str, str, str], day: str) -> tuple[list, str]:
        """Return gateway_keys() of a route, built once per route and day (a dozen calls and f-strings)."""
        known = self._keys.get(secret_hash)
        if known is None or known[0] != route or known[1] != day:
            slug, tenant_id, environment = route
            known = (route, day, *gateway_keys(slug, tenant_id, secret_hash, day, environment))
            if len(self._keys) < self._size:
                self._keys[secret_hash] = known
        return known[2], known[3]

    def forget(self, secret_hash: str | None = None) -> None:
        with self._lock:
            if secret_hash is None:
                self._routes.clear()
                self._keys.clear()
            else:
                self._routes.pop(secret_hash, None)
                self._keys.pop(secret_hash, None)

    def forget_keys(self) -> None:
        self._keys.clear()


routes = RouteCache()


@receiver(setting_changed)
def _forget_key_names(*, setting, **kwargs) -> None:
    # Key names depend on the key prefix and on the RATE_LIMIT_* defaults (the entry shape).
    if setting.startswith("RESILIENCE_"):
        routes.forget_keys()


# (tenant id, day) whose counts from before hash tags this process has adopted (upgrade day only).
_adopted: set[tuple[str, str]] = set()
#: The asked-flags field of a request for every flag (bootstrap, evaluate without keys).
ASK_ALL = "*"
# Longer lists of asked keys are counted as every flag: a field name stays small.
ASK_FIELD_MAX = 512
# (tenant id, day) whose request for every flag this process has counted: once is all the report needs.
_asked_all: set[tuple[str, str]] = set()


def ask_field(keys=None) -> str:
    """Return the asked-flags field of a request for `keys` (None: every flag; empty: none): one field per request."""
    if keys is None:
        return ASK_ALL
    if not keys:
        return ""
    field = ",".join(sorted(set(keys)))
    return field if len(field) <= ASK_FIELD_MAX else ASK_ALL


@dataclass
class GatewayResult:
    """What the gate decided for one request."""

    outcome: str  # ok | unknown | revoked | expired | not_serving | scope | limited | quota | unavailable
    tenant_id: str = ""
    tenant_slug: str = ""  # names the tenant's keys (its hash tag); set when the key was known
    api_key_id: int | None = None
    scopes: list[str] = field(default_factory=list)
    etag: str = ""
    payload: bytes = b""  # the bootstrap body or the rules JSON; empty when If-None-Match matched
    tenant_status: str = ""
    decision: Decision | None = None
    quota: int | None = None

    @property
    def not_modified(self) -> bool:
        return self.outcome == "ok" and not self.payload


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(api_key: ApiKey, doc: TenantDocument) -> list:
    per_minute, burst, quota = doc.limits
    expires = int(api_key.expires_at.timestamp() * 1000) if api_key.expires_at else 0
    last_used = int(api_key.last_used_at.timestamp() * 1000) if api_key.last_used_at else 0
    fields = {
        "tenant": doc.tenant_id,
        "ver": doc.version,
        "exp": expires,
        "serving": 1 if doc.serving else 0,
        "status": doc.status,
        "limit": per_minute,
        "burst": burst,
        "quota": quota or 0,
        "lu": last_used,
        "key_id": api_key.pk,
        "scopes": json.dumps(api_key.scopes),
    }
    return [item for pair in fields.items() for item in pair]


@dataclass
class Fill:
    """What the database says about a secret hash: a refusal, or the entry and document to cache."""

    refusal: str = ""  # unknown | revoked
    slug: str = ""
    tenant_id: str = ""
    environment: str = PRODUCTION
    args: list = field(default_factory=list)


def _fill(secret_hash: str) -> Fill:
    api_key = ApiKey.objects.filter(secret_hash=secret_hash).first()
    if api_key is None:
        return Fill("unknown")
    if api_key.revoked_at is not None:
        return Fill("revoked")
    doc = tenant_document_build(api_key.tenant_id, api_key.environment)
    metrics.tenant_seen(doc.tenant_id, doc.slug)
    stored = document_fields(doc)
    head = [cache_ttl(), doc.version, stored["body"], stored["etag"], stored["rules"], stored["keys"]]
    return Fill(
        slug=doc.slug,
        tenant_id=str(doc.tenant_id),
        environment=api_key.environment,
        args=[*head, *_entry(api_key, doc)],
    )


def _route_read(client, secret_hash: str) -> tuple[str, ...] | None:
    """Return a stored route: ("deny", reason) or ("ok", slug, tenant id, environment)."""
    raw = client.get(route_key(secret_hash))
    if raw is None:
        return None
    parts = tuple(_text(raw).split(" "))
    # Routes written before environments (and production's) name no environment.
    return (*parts, PRODUCTION) if parts[0] == "ok" and len(parts) == 3 else parts


def _route_write(client, secret_hash: str, fill: Fill) -> None:
    # A hash that is unknown or revoked now can never become valid: cache the refusal too.
    # Unknown hashes are attacker-chosen, so their refusals live briefly: memory stays
    # bounded by request rate x UNKNOWN_KEY_TTL even under a flood of random keys.
    if fill.refusal == "unknown":
        client.set(route_key(secret_hash), "deny unknown", ex=min(UNKNOWN_KEY_TTL, cache_ttl()))
    elif fill.refusal:
        client.set(route_key(secret_hash), f"deny {fill.refusal}", ex=cache_ttl())
    else:
        where = "" if fill.environment == PRODUCTION else f" {fill.environment}"
        client.set(route_key(secret_hash), f"ok {fill.slug} {fill.tenant_id}{where}", ex=cache_ttl())


def gateway_keys(
    slug: str, tenant_id: str, secret_hash: str, day: str, environment: str = PRODUCTION
) -> tuple[list, str]:
    """Return the gateway script's KEYS for one API key of a tenant, and the tenant's limiter index member."""
    # Every environment of a tenant shares its limits, usage and version: only the document differs.
    budget = call_keys("tenant", slug, slug)
    keys = [
        apikey_key(slug, secret_hash),
        version_key(slug, tenant_id),
        document_key(slug, tenant_id, environment),
        usage_key(slug, tenant_id, day),
        budget.state,
        budget.index_key,
        apikey_used_key(slug, tenant_id),
        flag_asks_key(slug, tenant_id, day),
    ]
    return keys, budget.member


def _decision(allowed: bool, limit: int, remaining, reset_ms, retry_ms) -> Decision:
    return Decision(
        allowed=allowed,
        limit=int(limit),
        remaining=int(remaining),
        reset_after=int(reset_ms) / 1000,
        retry_after=int(retry_ms) / 1000,
        window=WINDOW_SECONDS,
    )


def _address_pays(result: GatewayResult, client_ip: str | None) -> GatewayResult:
    """Spend the client address's `ip` budget for a refused request; answer 429 once it is spent."""
    if client_ip is None or not settings.RESILIENCE_RATE_LIMIT_ENABLED:
        return result
    # The same key and limits as RateLimitMiddleware's "ip" scope, so both count one budget.
    limits = limits_for(None)
    decision = default_limiter().hit("ip", None, client_ip, limit=limits.per_minute, burst=limits.burst)
    if not decision.allowed and not decision.degraded:
        return GatewayResult("limited", decision=decision)
    return result


def _address_spent(client_ip: str | None) -> GatewayResult | None:
    """Return a 429 when the client address has no budget left (counting nothing), else None."""
    if client_ip is None or not settings.RESILIENCE_RATE_LIMIT_ENABLED:
        return None
    limits = limits_for(None)
    peek = default_limiter().peek("ip", None, client_ip, limit=limits.per_minute, burst=limits.burst)
    return None if peek.allowed else GatewayResult("limited", decision=peek)


def gateway_call(secret: str, **kwargs) -> GatewayResult:
    """Authenticate `secret` for `scope`, limit by tenant (valid) or client IP (refused), count usage."""
    try:
        result = _gateway_call(secret, **kwargs)
    except DatabaseError as exc:
        # Only a cache miss (or Redis being down) needs the database: answer 503, not 500.
        log.warning("service API: database unavailable (%s)", exc)
        result = GatewayResult("unavailable")
    return metrics.gateway_observe(result)


def _gateway_call(
    secret: str,
    *,
    scope: str = "config:read",
    flag_key: str = "",
    field_name: str = "body",
    if_none_match: str = "",
    client_ip: str | None = None,
    now_ms: int | None = None,
    asked: str = "",
) -> GatewayResult:
    secret_hash = apikey_hash(secret)
    day = time.strftime("%Y%m%d", time.gmtime(now_ms / 1000 if now_ms else None))
    args = [
        "" if now_ms is None else now_ms,
        field_name,
        if_none_match or "",
        USAGE_TTL_SECONDS,
        1 if settings.RESILIENCE_RATE_LIMIT_ENABLED else 0,
        WINDOW_SECONDS * 1000,
    ]
    try:
        client = get_redis()
        if cache_sync.due():
            cache_sync.catch_up()  # this process saw Redis fail: deliver what Redis missed first
        route = routes.get(secret_hash)
        if route is None:
            seen = _route_read(client, secret_hash)
            if seen is not None and seen[0] == "deny":
                return _address_pays(GatewayResult(seen[1]), client_ip)
            route = (seen[1], seen[2], seen[3]) if seen is not None else None
            if route is not None:
                # Another process filled this key: keep its route so the next request is one round trip.
                routes.put(secret_hash, *route)
        reply = [b"miss"]
        slug = route[0] if route is not None else ""
        if asked == ASK_ALL and route is not None and (route[1], day) in _asked_all:
            asked = ""  # counted already: the warm path pays no extra command for it
        if route is not None:
            keys, member = routes.keys(secret_hash, route, day)
            reply = _run(client, keys, [*args, "0", scope, flag_key, member, asked])
        # A miss builds the entry from the database; 'stale' means a commit landed meanwhile: rebuild.
        # A miss counts nothing, so the fill call decides (and counts) exactly once.
        for attempt in range(3):
            if _text(reply[0]) not in ("miss", "stale"):
                break
            if attempt == 0 and route is None:
                # An address already out of budget is refused first: a flood of made-up keys
                # never reaches the database.
                spent = _address_spent(client_ip)
                if spent is not None:
                    return spent
            fill = _fill(secret_hash)
            metrics.gateway_cold_fill()
            _route_write(client, secret_hash, fill)
            if fill.refusal:
                routes.forget(secret_hash)
                return _address_pays(GatewayResult(fill.refusal), client_ip)
            routes.put(secret_hash, fill.slug, fill.tenant_id, fill.environment)
            slug = fill.slug
            if (fill.tenant_id, day) not in _adopted:
                usage_adopt_legacy(client, slug=fill.slug, tenant_id=fill.tenant_id, day=day)
                if len(_adopted) > ROUTES_KEPT:
                    _adopted.clear()
                _adopted.add((fill.tenant_id, day))
            keys, member = gateway_keys(fill.slug, fill.tenant_id, secret_hash, day, fill.environment)
            reply = _run(client, keys, [*args, "1", scope, flag_key, member, asked, *fill.args])
    except _REDIS_OR_OUTBOX_ERRORS as exc:
        if not isinstance(exc, RedisDisabled):
            cache_sync.behind = True
        return _without_redis(
            secret_hash,
            exc,
            scope=scope,
            field_name=field_name,
            if_none_match=if_none_match,
            client_ip=client_ip,
        )
    result = _result(reply)
    result.tenant_slug = slug
    if asked == ASK_ALL and result.outcome == "ok":
        if len(_asked_all) > ROUTES_KEPT:
            _asked_all.clear()
        _asked_all.add((result.tenant_id, day))
    if result.outcome in _ADDRESS_PAYS:
        return _address_pays(result, client_ip)
    return result


def _run(client, keys: list, args: list):
    # A server without the script was restarted or failed over (scripts are not persisted),
    # possibly from an old AOF or RDB that lacks recent publications: republish every
    # version before EVAL loads the script; until it is loaded, every process lands here first.
    return GATEWAY.run(client, keys, args, on_missing=lambda: cache_sync.catch_up(resync=True))


def _result(reply: list) -> GatewayResult:
    outcome = _text(reply[0])
    if outcome == "ok":
        # `touch` says the script recorded a last use (in Redis: flush_apikey_last_used copies it to the database).
        (_, tenant, key_id, scopes, etag, payload, _touch, remaining, reset_ms, retry_ms, _now, limit) = reply
        result = GatewayResult(
            "ok",
            tenant_id=_text(tenant),
            api_key_id=int(key_id),
            scopes=json.loads(scopes),
            etag=_text(etag),
            payload=payload,
        )
        if settings.RESILIENCE_RATE_LIMIT_ENABLED:
            result.decision = _decision(True, limit, remaining, reset_ms, retry_ms)
        return result
    if outcome == "expired":
        return GatewayResult("expired")
    if outcome == "not_serving":
        return GatewayResult("not_serving", tenant_status=_text(reply[1]), tenant_id=_text(reply[2]))
    if outcome == "scope":
        return GatewayResult("scope", tenant_id=_text(reply[1]))
    if outcome == "limited":
        _, tenant, remaining, reset_ms, retry_ms, limit = reply
        return GatewayResult(
            "limited", tenant_id=_text(tenant), decision=_decision(False, limit, remaining, reset_ms, retry_ms)
        )
    if outcome == "quota":
        return GatewayResult("quota", tenant_id=_text(reply[1]), quota=int(reply[2]))
    # 'miss' three times in a row: writes are racing this request; let the client retry.
    return GatewayResult("unavailable")


def _without_redis(
    secret_hash: str,
    exc: BaseException,
    *,
    scope: str,
    field_name: str,
    if_none_match: str,
    client_ip: str | None,
) -> GatewayResult:
    """Answer from the database without Redis.

    REDIS_ENABLE=false: limits hold in process, per worker, with the same rules as the
    script (a valid key spends its tenant's plan, anything refused the client address);
    the fail mode has nothing to decide. Redis down: RATE_LIMIT_FAIL_MODE decides whether
    to serve unlimited or refuse.
    """
    disabled = isinstance(exc, RedisDisabled)
    if not disabled:
        # A full or read-only Redis cannot count either: the same fail mode as an outage, said as such.
        state = "refuses writes" if isinstance(exc, REDIS_WRITE_REFUSED_ERRORS) else "is unavailable"
        metrics.limiter_degraded("tenant", enabled=settings.RESILIENCE_RATE_LIMIT_ENABLED)
        if settings.RESILIENCE_RATE_LIMIT_ENABLED and settings.RESILIENCE_RATE_LIMIT_FAIL_MODE == "closed":
            log.warning(
                "service API: Redis %s (%s: %s); RATE_LIMIT_FAIL_MODE=closed: answering 503",
                state,
                type(exc).__name__,
                exc,
            )
            return GatewayResult("unavailable")
        log.warning(
            "service API: Redis %s (%s: %s); RATE_LIMIT_FAIL_MODE=open: answering from the database, "
            "not rate limited and not counted",
            state,
            type(exc).__name__,
            exc,
        )
    limit_here = disabled and settings.RESILIENCE_RATE_LIMIT_ENABLED

    def refused(result: GatewayResult) -> GatewayResult:
        if limit_here and client_ip is not None:
            limits = limits_for(None)
            decision = default_limiter().hit("ip", None, client_ip, limit=limits.per_minute, burst=limits.burst)
            if not decision.allowed:
                return GatewayResult("limited", decision=decision)
        return result

    api_key = ApiKey.objects.filter(secret_hash=secret_hash).first()
    if api_key is None:
        return refused(GatewayResult("unknown"))
    if api_key.revoked_at is not None:
        return refused(GatewayResult("revoked"))
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        return refused(GatewayResult("expired"))
    doc = tenant_document_build(api_key.tenant_id, api_key.environment)
    if not doc.serving:
        return refused(GatewayResult("not_serving", tenant_status=doc.status, tenant_id=doc.tenant_id))
    if scope not in api_key.scopes:
        return refused(GatewayResult("scope", tenant_id=doc.tenant_id))
    decision = None
    if limit_here:
        per_minute, burst, _quota = doc.limits
        decision = default_limiter().hit("tenant", doc.slug, doc.slug, limit=per_minute, burst=burst)
        if not decision.allowed:
            return GatewayResult("limited", tenant_id=doc.tenant_id, decision=decision)
    payload = document_fields(doc)[field_name]
    if isinstance(payload, str):
        payload = payload.encode()
    if field_name == "body" and if_none_match and (if_none_match == "*" or doc.etag in if_none_match):
        payload = b""
    return GatewayResult(
        "ok",
        tenant_id=doc.tenant_id,
        tenant_slug=doc.slug,
        api_key_id=api_key.pk,
        scopes=api_key.scopes,
        etag=doc.etag,
        payload=payload,
        decision=decision,
    )
