"""The service API's request gate: one Redis round trip authenticates, limits, counts and answers.

`gateway_call()` runs `lua/gateway.lua` (prefixed with the rate limiter's own Lua
library) with EVALSHA. On a warm cache that single script is the whole request's
I/O: no SQL, one Redis call. On a miss it builds the API-key entry and the tenant's
document from the database and runs the same script once more with them attached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from agentapi_admin import metrics
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, REDIS_WRITE_REFUSED_ERRORS, RedisDisabled
from resilience.ratelimit import (
    Decision,
    default_limiter,
    index_all_key,
    index_tenant_key,
    lua_library,
    state_key,
    tenant_label,
)
from resilience.ratelimit.policy import limits_for
from tenants.cache import USAGE_TTL_SECONDS, apikey_key, cache_sync, cache_ttl
from tenants.models import ApiKey
from tenants.selectors import TenantDocument, document_fields, tenant_document_build
from tenants.services.apikeys import apikey_hash, apikey_mark_used
from tenants.services.outbox import OutboxUndelivered

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
WINDOW_SECONDS = 60
UNKNOWN_KEY_TTL = 30


@cache
def gateway_script() -> tuple[str, str]:
    """Return (source, sha1): the limiter's Lua library followed by the gateway script."""
    source = lua_library() + "\n" + (LUA_DIR / "gateway.lua").read_text()
    return source, hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - SHA1 is how Redis names scripts


@dataclass
class GatewayResult:
    """What the gate decided for one request."""

    outcome: str  # ok | unknown | revoked | expired | not_serving | scope | limited | quota | unavailable
    tenant_id: str = ""
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
    # The limiter's key and index names come from its own helpers, so the admin lists this tenant.
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
        "rl_key": state_key("tenant", doc.slug, doc.slug),
        "rl_idx": index_tenant_key(doc.slug),
        "rl_member_all": f"tenant:{doc.slug}:{doc.slug}",
        "rl_member": f"tenant:{doc.slug}",
    }
    return [item for pair in fields.items() for item in pair]


def _fill(secret_hash: str) -> tuple[str, list]:
    api_key = ApiKey.objects.filter(secret_hash=secret_hash).first()
    # A hash that is unknown or revoked now can never become valid: cache the refusal too.
    # Unknown hashes are attacker-chosen, so their refusals live briefly: memory stays
    # bounded by request rate x UNKNOWN_KEY_TTL even under a flood of random keys.
    if api_key is None:
        return "2", [min(UNKNOWN_KEY_TTL, cache_ttl()), "unknown"]
    if api_key.revoked_at is not None:
        return "2", [cache_ttl(), "revoked"]
    doc = tenant_document_build(api_key.tenant_id)
    metrics.tenant_seen(doc.tenant_id, doc.slug)
    stored = document_fields(doc)
    head = [cache_ttl(), doc.tenant_id, doc.version, stored["body"], stored["etag"], stored["rules"], stored["keys"]]
    return "1", [*head, *_entry(api_key, doc)]


def _decision(allowed: bool, limit: int, remaining, reset_ms, retry_ms) -> Decision:
    return Decision(
        allowed=allowed,
        limit=int(limit),
        remaining=int(remaining),
        reset_after=int(reset_ms) / 1000,
        retry_after=int(retry_ms) / 1000,
        window=WINDOW_SECONDS,
    )


def _ip_args(client_ip: str | None) -> list:
    if client_ip is None or not settings.RESILIENCE_RATE_LIMIT_ENABLED:
        return ["0", "", "", "", "", 0, 0]
    # The same key, index and limits as RateLimitMiddleware's "ip" scope, so both count one budget:
    # what a refused request spends (see lua/gateway.lua).
    limits = limits_for(None)
    member = f"ip:{tenant_label(None)}:{client_ip}"
    return [
        "1",
        state_key("ip", None, client_ip),
        index_tenant_key(None),
        member,
        f"ip:{client_ip}",
        limits.per_minute,
        limits.burst,
    ]


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
) -> GatewayResult:
    secret_hash = apikey_hash(secret)
    source, sha = gateway_script()
    day = time.strftime("%Y%m%d", time.gmtime(now_ms / 1000 if now_ms else None))
    base = [
        settings.RESILIENCE_KEY_PREFIX,
        "" if now_ms is None else now_ms,
        field_name,
        if_none_match or "",
        day,
        USAGE_TTL_SECONDS,
        1 if settings.RESILIENCE_RATE_LIMIT_ENABLED else 0,
        WINDOW_SECONDS * 1000,
        index_all_key(),
    ]
    keys = [apikey_key(secret_hash)]
    try:
        client = get_redis()
        if cache_sync.due():
            cache_sync.catch_up()  # this process saw Redis fail: deliver what Redis missed first
        ip = _ip_args(client_ip)
        reply = _run(client, source, sha, keys, [*base, "0", scope, flag_key, *ip])
        # A miss builds the entry from the database; 'stale' means a commit landed meanwhile: rebuild.
        # A miss counts nothing, so the fill call decides (and counts) exactly once.
        for _ in range(3):
            if _text(reply[0]) not in ("miss", "stale"):
                break
            code, data = _fill(secret_hash)
            metrics.gateway_cold_fill()
            reply = _run(client, source, sha, keys, [*base, code, scope, flag_key, *ip, *data])
    except (*REDIS_UNAVAILABLE_ERRORS, OutboxUndelivered) as exc:
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
    return _result(reply)


def _run(client, source: str, sha: str, keys: list, args: list):
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        # First call on this server, or Redis restarted / failed over (scripts are not persisted),
        # possibly from an old AOF or RDB that lacks recent publications. Republish every version
        # before EVAL loads the script: until it is loaded, every process lands here first.
        cache_sync.catch_up(resync=True)
        return client.eval(source, len(keys), *keys, *args)


def _result(reply: list) -> GatewayResult:
    outcome = _text(reply[0])
    if outcome == "ok":
        (_, tenant, key_id, scopes, etag, payload, touch, remaining, reset_ms, retry_ms, now, limit) = reply
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
        if int(touch):
            try:
                apikey_mark_used(api_key_id=result.api_key_id, at=datetime.fromtimestamp(int(now) / 1000, UTC))
            except DatabaseError as exc:
                # "Last used" is advisory: a database hiccup must not fail a request served from Redis.
                log.warning("could not record API key %s as used: %s", result.api_key_id, exc)
        return result
    if outcome == "deny":
        return GatewayResult(_text(reply[1]))
    if outcome == "expired":
        return GatewayResult("expired")
    if outcome == "not_serving":
        return GatewayResult("not_serving", tenant_status=_text(reply[1]), tenant_id=_text(reply[2]))
    if outcome == "scope":
        return GatewayResult("scope", tenant_id=_text(reply[1]))
    if outcome == "limited_ip":
        _, remaining, reset_ms, retry_ms, limit = reply
        return GatewayResult("limited", decision=_decision(False, limit, remaining, reset_ms, retry_ms))
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
    exc: Exception,
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
    doc = tenant_document_build(api_key.tenant_id)
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
        api_key_id=api_key.pk,
        scopes=api_key.scopes,
        etag=doc.etag,
        payload=payload,
        decision=decision,
    )
