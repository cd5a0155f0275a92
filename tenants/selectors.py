"""Reads for the tenants app: flag evaluation (cached per tenant in Redis), memberships, usage, audit."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants.cache import cache_ttl
from tenants.keys import apikey_used_key, document_key, usage_key, version_key
from tenants.models import ApiKey, Flag, Membership, OwnerToggle, Tenant, TenantFlag, UsageDaily
from tenants.settings_schema import settings_effective

log = logging.getLogger(__name__)

REASONS = ("default", "plan", "admin_override", "owner_toggle", "rollout", "archived")
_OVERRIDE_REASON: dict[str, str] = {TenantFlag.Source.ADMIN: "admin_override", TenantFlag.Source.OWNER: "owner_toggle"}
# Rollout buckets have 0.01 % resolution; percent p admits buckets [0, p * 100).
_BUCKETS = 10_000


@dataclass(frozen=True)
class EvaluatedFlag:
    enabled: bool
    reason: str
    version: int


@dataclass(frozen=True)
class ExplainedFlag:
    key: str
    description: str
    enabled: bool
    reason: str
    version: int
    editable: bool
    risky: bool
    rollout_percent: int
    #: The tenant owner's own choice (None: none), and the platform's override ({enabled, percent} or None).
    owner_enabled: bool | None = None
    platform: dict | None = None


@dataclass(frozen=True)
class TenantDocument:
    """A tenant's evaluation inputs and its bootstrap body at one cache version."""

    tenant_id: str
    version: int
    rules: dict
    body: bytes
    etag: str
    slug: str = ""
    status: str = ""
    serving: bool = True
    limits: tuple = (0, 0, None)


def rollout_bucket(flag_key: str, subject: str) -> int:
    """Return the subject's stable bucket (0-9999) for a flag."""
    digest = hashlib.sha256(f"{flag_key}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def rollout_admits(flag_key: str, subject: str, percent: int) -> bool:
    """Return True if a `percent` rollout of the flag includes the subject; monotonic in percent."""
    return rollout_bucket(flag_key, subject) < percent * (_BUCKETS // 100)


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def tenant_limits(tenant: Tenant) -> tuple[int, int, int | None]:
    """Return (per_minute, burst, daily_quota) of the tenant's plan; empty plan limits use RATE_LIMIT_* defaults."""
    plan = tenant.plan
    per_minute = plan.rate_limit_per_minute or settings.RESILIENCE_RATE_LIMIT_PER_MINUTE
    burst = plan.burst if plan.burst is not None else settings.RESILIENCE_RATE_LIMIT_BURST
    return per_minute, burst, plan.daily_quota or None


def _build_document(tenant_id: UUID | str) -> TenantDocument:
    tenant = Tenant.objects.select_related("plan").get(pk=tenant_id)
    plan = tenant.plan
    overrides = {o.flag_id: o for o in TenantFlag.objects.filter(tenant=tenant)}
    owners = {o.flag_id: o for o in OwnerToggle.objects.filter(tenant=tenant)}
    rules = {}
    for flag in Flag.objects.all():
        override = overrides.get(flag.pk)
        # An owner's choice counts only while owners may edit the flag, and only within the override:
        # "off" always wins, "on" restores what the platform set (its rollout), never more.
        owner = owners.get(flag.pk) if flag.tenant_editable else None
        version = max([flag.updated_at] + [layer.updated_at for layer in (override, owner) if layer is not None])
        percent = 100
        if flag.archived:
            enabled, reason, version = False, "archived", flag.updated_at
        elif owner is not None and not owner.enabled:
            enabled, reason = False, "owner_toggle"
        elif override is not None:
            enabled, reason = override.enabled, _OVERRIDE_REASON[override.source]
            percent = override.rollout_percent if override.enabled else 100
        elif owner is not None:
            enabled, reason = True, "owner_toggle"
        elif flag.key in plan.default_flags:
            enabled, reason = bool(plan.default_flags[flag.key]), "plan"
            version = max(version, plan.updated_at)
        else:
            enabled, reason = flag.default, "default"
        rules[flag.key] = {
            "enabled": enabled,
            "reason": reason,
            "percent": percent,
            "version": _ms(version),
            "editable": flag.tenant_editable and not flag.archived,
            "risky": flag.risky,
            "archived": flag.archived,
            "description": flag.description,
            "owner": None if owner is None else owner.enabled,
            "platform": None
            if override is None
            else {"enabled": override.enabled, "percent": override.rollout_percent},
        }
    per_minute, burst, quota = tenant_limits(tenant)
    subject = str(tenant.pk)
    payload = {
        "tenant": {
            "id": str(tenant.pk),
            "slug": tenant.slug,
            "name": tenant.name,
            "status": tenant.status,
            "upstream_url": tenant.upstream_url,
        },
        "plan": {"code": plan.code, "name": plan.name},
        "limits": {"requests_per_minute": per_minute, "burst": burst, "daily_quota": quota},
        "settings": settings_effective(tenant.settings),
        # rollout_percent lets clients evaluate a rollout for their own subjects (tests/flags/vectors.json).
        "flags": {
            key: {**_evaluate(key, rule, subject).__dict__, "rollout_percent": rule["percent"]}
            for key, rule in rules.items()
        },
        "cache_version": tenant.cache_version,
    }
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return TenantDocument(
        str(tenant.pk),
        tenant.cache_version,
        rules,
        body,
        etag,
        slug=tenant.slug,
        status=tenant.status,
        serving=tenant.is_serving,
        limits=(per_minute, burst, quota),
    )


def _evaluate(key: str, rule: dict, subject: str) -> EvaluatedFlag:
    if rule["enabled"] and rule["percent"] < 100:
        return EvaluatedFlag(rollout_admits(key, subject, rule["percent"]), "rollout", rule["version"])
    return EvaluatedFlag(rule["enabled"], rule["reason"], rule["version"])


def tenant_document_build(tenant_id: UUID | str) -> TenantDocument:
    """Build a tenant's document from the database (the cold path; no Redis)."""
    return _build_document(tenant_id)


def document_fields(doc: TenantDocument) -> dict:
    """Return the Redis hash fields a document is stored as."""
    return {
        "rules": json.dumps(doc.rules, separators=(",", ":")),
        "body": doc.body,
        "etag": doc.etag,
        # One flag key per line, so the API's script tells a known flag from a 404 without parsing JSON.
        "keys": "\n" + "\n".join(sorted(doc.rules)) + "\n",
    }


def tenant_rules(tenant: Tenant) -> dict:
    """Return the tenant's flag rules: from Redis when warm (no SQL), else built and cached."""
    cache_key = document_key(tenant.slug, tenant.pk)
    try:
        client = get_redis()
        built, raw = client.hmget(cache_key, ["ver", "rules"])
        # Exactly the caller's version, as the versioned key names used to demand: a caller holding an
        # older tenant row rebuilds from the database rather than trust a document of another version.
        if raw is not None and built is not None and int(built) == tenant.cache_version:
            return json.loads(raw)
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("flag cache unavailable, evaluating from the database: %s", exc)
        return _build_document(tenant.pk).rules
    doc = _build_document(tenant.pk)
    try:
        # Stored with the version just read from the database, not the caller's possibly stale one,
        # and only while it is the published one (the gateway's script compares both).
        if int(client.get(version_key(doc.slug, doc.tenant_id)) or 0) <= doc.version:
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(cache_key, mapping={"ver": doc.version, **document_fields(doc)})
                pipe.expire(cache_key, cache_ttl())
                pipe.execute()
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("could not cache tenant flags: %s", exc)
    return doc.rules


def flags_evaluate(tenant: Tenant, subject: str | None = None) -> dict[str, EvaluatedFlag]:
    """Return every flag evaluated for the tenant (and subject; the tenant itself when None)."""
    subject = str(tenant.pk) if subject is None else str(subject)
    return {key: _evaluate(key, rule, subject) for key, rule in tenant_rules(tenant).items()}


def flag_evaluate_from_rules(rules: dict, key: str, subject: str) -> EvaluatedFlag | None:
    """Evaluate one flag from cached rules; None if the flag does not exist."""
    rule = rules.get(key)
    return None if rule is None else _evaluate(key, rule, subject)


def flag_is_enabled(tenant: Tenant, key: str, subject: str | None = None) -> bool:
    """Return True if the flag is on for the tenant (and subject); unknown flags are off."""
    subject = str(tenant.pk) if subject is None else str(subject)
    result = flag_evaluate_from_rules(tenant_rules(tenant), key, subject)
    return bool(result and result.enabled)


def flags_explain(tenant: Tenant) -> list[ExplainedFlag]:
    """Return every visible (not archived) flag with its effective value, reason and editability."""
    subject = str(tenant.pk)
    explained = []
    for key, rule in sorted(tenant_rules(tenant).items()):
        if rule["archived"]:
            continue
        result = _evaluate(key, rule, subject)
        explained.append(
            ExplainedFlag(
                key=key,
                description=rule["description"],
                enabled=result.enabled,
                reason=result.reason,
                version=result.version,
                editable=rule["editable"],
                risky=rule["risky"],
                rollout_percent=rule["percent"],
                owner_enabled=rule.get("owner"),
                platform=rule.get("platform"),
            )
        )
    return explained


def tenants_for_user(user) -> QuerySet[Membership]:
    """Return the user's memberships (with tenant and role), tenants marked deleted left out."""
    if not getattr(user, "is_authenticated", False):
        return Membership.objects.none()
    return (
        Membership.objects.filter(user=user)
        .exclude(tenant__status=Tenant.Status.DELETED)
        .select_related("tenant", "tenant__plan")
        .order_by("tenant__slug")
    )


def usage_daily(tenant: Tenant, days: int = 30) -> list[dict]:
    """Return one row per UTC day (oldest first): {"day", "requests", ...}, zero-filled, live counters included."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows: dict[date, dict] = {first + timedelta(days=n): {} for n in range(days)}
    for day, metric, count in UsageDaily.objects.filter(tenant=tenant, day__gte=first).values_list(
        "day", "metric", "count"
    ):
        rows[day][metric] = count
    try:
        client = get_redis()
        with client.pipeline(transaction=False) as pipe:
            # Only the last few days can still have unflushed counters.
            recent = [d for d in rows if d >= today - timedelta(days=2)]
            for day in recent:
                pipe.hgetall(usage_key(tenant.slug, tenant.pk, day.strftime("%Y%m%d")))
            for day, counters in zip(recent, pipe.execute(), strict=True):
                for metric, count in counters.items():
                    metric = metric.decode() if isinstance(metric, bytes) else metric
                    rows[day][metric] = max(rows[day].get(metric, 0), int(count))
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("live usage counters unavailable: %s", exc)
    return [{"day": day, "requests": 0, **counters} for day, counters in sorted(rows.items())]


def apikeys_with_last_use(keys: Iterable[ApiKey]) -> list[ApiKey]:
    """Return the keys with `last_used_at` set to the newer of the database's and Redis's time (display only).

    The service API records a use in Redis (at most once a minute per key) and a maintenance
    task copies it to the database later; this read shows a use at once. Without Redis the
    database's time is shown.
    """
    keys = list(keys)
    tenant_ids = sorted({k.tenant_id for k in keys}, key=str)
    if not tenant_ids:
        return keys
    slugs = dict(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", "slug"))
    try:
        client = get_redis()
        with client.pipeline(transaction=False) as pipe:
            for tenant_id in tenant_ids:
                pipe.hmget(
                    apikey_used_key(slugs[tenant_id], tenant_id), [k.pk for k in keys if k.tenant_id == tenant_id]
                )
            replies = dict(zip(tenant_ids, pipe.execute(), strict=True))
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("API-key last use: Redis unavailable (%s); showing the database's times", exc)
        return keys
    positions: dict = {}
    for api_key in keys:
        index = positions.get(api_key.tenant_id, 0)
        positions[api_key.tenant_id] = index + 1
        raw = replies[api_key.tenant_id][index]
        if raw is None:
            continue
        at = datetime.fromtimestamp(int(raw) / 1000, UTC)
        if api_key.last_used_at is None or api_key.last_used_at < at:
            api_key.last_used_at = at
    return keys


def audit_for_object(obj) -> QuerySet[AuditEvent]:
    """Return the audit events about `obj`, newest first; a tenant's include everything scoped to it."""
    about = Q(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    if isinstance(obj, Tenant):
        about |= Q(tenant=obj)
    elif isinstance(obj, Flag):
        # Overrides are recorded against the flag's key, whichever tenant they belong to.
        about |= Q(object_type="tenants.tenantflag", object_id=obj.key)
    return AuditEvent.objects.filter(about).select_related("tenant").order_by("-created_at", "-id")
