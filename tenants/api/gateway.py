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
from resilience.exceptions import RedisDisabled
from resilience.ratelimit import Decision, index_all_key, index_tenant_key, lua_library, state_key, tenant_label
from resilience.ratelimit.limiter import most_restrictive
from resilience.ratelimit.policy import limits_for
from tenants.cache import USAGE_TTL_SECONDS, apikey_key, cache_ttl
from tenants.models import ApiKey
from tenants.selectors import TenantDocument, document_fields, tenant_document_build
from tenants.services.apikeys import apikey_hash, apikey_mark_used

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

    outcome: str  # ok | unknown | revoked | expired | not_serving | limited | quota | unavailable
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
    head = [cache_ttl(), doc.tenant_id, doc.version, stored["body"], stored["etag"], stored["rules"]]
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
    # The same key, index and limits as RateLimitMiddleware's "ip" scope, so both count one budget.
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
    """Limit the client IP, authenticate `secret`, apply the tenant's limits, count usage; return a GatewayResult."""
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
        reply = _run(client, source, sha, keys, [*base, "0", *_ip_args(client_ip)])
        # A miss builds the entry from the database; 'stale' means a commit landed meanwhile: rebuild.
        # The first call already counted the IP, so the fill calls do not.
        for _ in range(3):
            if _text(reply[0]) not in ("miss", "stale"):
                break
            code, data = _fill(secret_hash)
            metrics.gateway_cold_fill()
            reply = _run(client, source, sha, keys, [*base, code, *_ip_args(None), *data])
    except (redis.RedisError, RedisDisabled, OSError) as exc:
        return _without_redis(secret_hash, field_name, if_none_match, exc)
    return _result(reply)


def _run(client, source: str, sha: str, keys: list, args: list):
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        # First call on this server (or after a restart / SCRIPT FLUSH): EVAL loads it.
        return client.eval(source, len(keys), *keys, *args)


def _result(reply: list) -> GatewayResult:
    outcome = _text(reply[0])
    if outcome == "ok":
        (_, tenant, key_id, scopes, etag, payload, touch, remaining, reset_ms, retry_ms, now, limit, *ip) = reply
        result = GatewayResult(
            "ok",
            tenant_id=_text(tenant),
            api_key_id=int(key_id),
            scopes=json.loads(scopes),
            etag=_text(etag),
            payload=payload,
        )
        if settings.RESILIENCE_RATE_LIMIT_ENABLED:
            decisions = [_decision(True, limit, remaining, reset_ms, retry_ms)]
            if int(ip[3]):
                decisions.append(_decision(True, ip[3], ip[0], ip[1], ip[2]))
            result.decision = most_restrictive(decisions)
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


def _without_redis(secret_hash: str, field_name: str, if_none_match: str, exc: Exception) -> GatewayResult:
    """Answer from the database while Redis is down; RATE_LIMIT_FAIL_MODE decides whether to serve unlimited."""
    log.warning(
        "service API without Redis (%s): RATE_LIMIT_FAIL_MODE=%s", exc, settings.RESILIENCE_RATE_LIMIT_FAIL_MODE
    )
    metrics.limiter_degraded("tenant", enabled=settings.RESILIENCE_RATE_LIMIT_ENABLED)
    if settings.RESILIENCE_RATE_LIMIT_ENABLED and settings.RESILIENCE_RATE_LIMIT_FAIL_MODE == "closed":
        return GatewayResult("unavailable")
    api_key = ApiKey.objects.filter(secret_hash=secret_hash).first()
    if api_key is None:
        return GatewayResult("unknown")
    if api_key.revoked_at is not None:
        return GatewayResult("revoked")
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        return GatewayResult("expired")
    doc = tenant_document_build(api_key.tenant_id)
    if not doc.serving:
        return GatewayResult("not_serving", tenant_status=doc.status, tenant_id=doc.tenant_id)
    payload = document_fields(doc)[field_name]
    if isinstance(payload, str):
        payload = payload.encode()
    if field_name == "body" and if_none_match and (if_none_match == "*" or doc.etag in if_none_match):
        payload = b""
    return GatewayResult(
        "ok", tenant_id=doc.tenant_id, api_key_id=api_key.pk, scopes=api_key.scopes, etag=doc.etag, payload=payload
    )
