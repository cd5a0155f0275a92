"""Reads for the tenants app: flag evaluation (cached per tenant in Redis), memberships, usage, audit."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants import flagrules
from tenants.cache import cache_ttl
from tenants.flag_text import rule_text
from tenants.keys import apikey_used_key, document_key, usage_key, version_key
from tenants.models import (
    PRODUCTION,
    ApiKey,
    Environment,
    Flag,
    Membership,
    OwnerToggle,
    Segment,
    Tenant,
    TenantFlag,
    UsageDaily,
)
from tenants.settings_schema import settings_effective

log = logging.getLogger(__name__)

REASONS = flagrules.REASONS


@dataclass(frozen=True)
class EvaluatedFlag:
    enabled: bool
    reason: str
    version: int
    value: Any = None
    variant: str | None = None
    #: The 1-based position of the flag-level rule that decided (reason "rule"), else None.
    rule: int | None = None


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
    kind: str = "boolean"
    value: Any = None
    variant: str | None = None
    #: The owner's variant pick (None: none) and the variants the platform lets owners pick among.
    owner_variant: str | None = None
    owner_variants: tuple = ()
    variants: tuple = ()


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
    environment: str = PRODUCTION


rollout_bucket = flagrules.rollout_bucket
rollout_admits = flagrules.rollout_admits


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def tenant_limits(tenant: Tenant) -> tuple[int, int, int | None]:
    """Return (per_minute, burst, daily_quota) of the tenant's plan; empty plan limits use RATE_LIMIT_* defaults."""
    plan = tenant.plan
    per_minute = plan.rate_limit_per_minute or settings.RESILIENCE_RATE_LIMIT_PER_MINUTE
    burst = plan.burst if plan.burst is not None else settings.RESILIENCE_RATE_LIMIT_BURST
    return per_minute, burst, plan.daily_quota or None


def tenant_attributes(tenant: Tenant) -> dict:
    """Return what segments' tenant.* conditions test (tenants.flagrules.TENANT_ATTRIBUTES)."""
    return {
        "id": str(tenant.pk),
        "slug": tenant.slug,
        "plan": tenant.plan.code,
        "status": tenant.status,
        "labels": list(tenant.labels or []),
        "settings": settings_effective(tenant.settings),
    }


def _flag_changed(flag: Flag, tenant: Tenant, override, owner, segments_changed: dict) -> datetime:
    """Return when the inputs of a flag's answer for a tenant last changed (its entry's version).

    The tenant counts whatever decides: its plan, labels, settings and status feed the rules,
    the plan and the default, and removing an override or an owner's choice touches it
    (tenants.services.flags), so the version moves even when the layer that decided is gone.
    """
    moments = [flag.updated_at, tenant.updated_at]
    moments += [layer.updated_at for layer in (override, owner) if layer is not None]
    moments += [segments_changed[r["segment"]] for r in flag.rules if r.get("segment") in segments_changed]
    if override is None and owner is None:
        moments.append(tenant.plan.updated_at)
    return max(moments)


def flag_rule_compile(
    flag: Flag,
    *,
    tenant: Tenant,
    attributes: dict,
    override: TenantFlag | None,
    owner: OwnerToggle | None,
    segments: dict,
    segments_changed: dict,
) -> dict:
    """Return one flag's cached rule for a tenant (the document's `rules[key]`) from its rows."""
    plan = tenant.plan
    # An owner's choice counts only while owners may edit the flag, and only within the override:
    # "off" always wins, "on" restores what the platform set (its rollout), never more.
    owner = owner if flag.tenant_editable else None
    plan_value = plan.default_flags.get(flag.key) if isinstance(plan.default_flags, dict) else None
    version = _ms(flag.updated_at if flag.archived else _flag_changed(flag, tenant, override, owner, segments_changed))
    entry = flagrules.compile_entry(
        flag={
            "key": flag.key,
            "kind": flag.kind,
            "default": flag.default,
            "default_value": flag.default_value,
            "variants": flag.variants,
            "rules": flag.rules,
            "archived": flag.archived,
            "tenant_editable": flag.tenant_editable,
        },
        tenant=attributes,
        version=version,
        override=None
        if override is None
        else {
            "enabled": override.enabled,
            "rollout_percent": override.rollout_percent,
            "variant": override.variant,
            "value": override.value,
            "owner_variants": override.owner_variants,
        },
        owner=None if owner is None else {"enabled": owner.enabled, "variant": owner.variant},
        plan_value=None if plan_value is None else bool(plan_value),
        segments=segments,
    )
    return {
        "entry": entry,
        "percent": override.rollout_percent if override is not None and override.enabled else 100,
        "version": version,
        "editable": flag.tenant_editable and not flag.archived,
        "risky": flag.risky,
        "archived": flag.archived,
        "description": flag.description,
        "owner": None if owner is None else owner.enabled,
        "owner_variant": None if owner is None or not owner.variant else owner.variant,
        "platform": None
        if override is None
        else {
            "enabled": override.enabled,
            "percent": override.rollout_percent,
            "variant": override.variant or None,
            "value": override.value,
            "owner_variants": list(override.owner_variants),
        },
    }


def tenant_environments(tenant: Tenant) -> list[str]:
    """Return the keys of the tenant's environments: `production` first, then the others by key."""
    return [PRODUCTION, *Environment.objects.filter(tenant=tenant).order_by("key").values_list("key", flat=True)]


def _build_document(tenant_id: UUID | str, environment: str = PRODUCTION) -> TenantDocument:
    tenant = Tenant.objects.select_related("plan").get(pk=tenant_id)
    plan = tenant.plan
    overrides = {o.flag_id: o for o in TenantFlag.objects.filter(tenant=tenant, environment=environment)}
    owners = {o.flag_id: o for o in OwnerToggle.objects.filter(tenant=tenant, environment=environment)}
    segment_rows = Segment.objects.values_list("key", "conditions", "updated_at")
    segments = {key: conditions for key, conditions, _ in segment_rows}
    segments_changed = {key: changed for key, _, changed in segment_rows}
    attributes = tenant_attributes(tenant)
    rules = {
        flag.key: flag_rule_compile(
            flag,
            tenant=tenant,
            attributes=attributes,
            override=overrides.get(flag.pk),
            owner=owners.get(flag.pk),
            segments=segments,
            segments_changed=segments_changed,
        )
        for flag in Flag.objects.all()
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
        # `eval` lets clients evaluate each flag for their own subjects and context, exactly as
        # POST /api/v1/evaluate would (tests/flags/vectors.json); rollout_percent is its older form.
        "flags": {key: _bootstrap_entry(key, rule, subject) for key, rule in rules.items()},
        "cache_version": tenant.cache_version,
        "environment": environment,
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
        environment=environment,
    )


def _evaluate(key: str, rule: dict, subject: str, context: dict | None = None) -> EvaluatedFlag:
    result = flagrules.evaluate(key, rule["entry"], subject, context)
    return EvaluatedFlag(result.enabled, result.reason, result.version, result.value, result.variant, result.rule)


def _bootstrap_entry(key: str, rule: dict, subject: str) -> dict:
    """Return a flag's bootstrap entry: its answer for the tenant itself and what clients need to evaluate it."""
    result = _evaluate(key, rule, subject)
    entry = {
        "enabled": result.enabled,
        "reason": result.reason,
        "version": result.version,
        "value": result.value,
        "variant": result.variant,
        "rollout_percent": rule["percent"],
        "eval": rule["entry"],
    }
    if result.rule is not None:
        entry["rule"] = result.rule
    return entry


def tenant_document_build(tenant_id: UUID | str, environment: str = PRODUCTION) -> TenantDocument:
    """Build the document of a tenant's environment from the database (the cold path; no Redis)."""
    return _build_document(tenant_id, environment)


def document_fields(doc: TenantDocument) -> dict:
    """Return the Redis hash fields a document is stored as."""
    return {
        "rules": json.dumps(doc.rules, separators=(",", ":")),
        "body": doc.body,
        "etag": doc.etag,
        # One flag key per line, so the API's script tells a known flag from a 404 without parsing JSON.
        "keys": "\n" + "\n".join(sorted(doc.rules)) + "\n",
    }


def tenant_rules(tenant: Tenant, environment: str = PRODUCTION) -> dict:
    """Return the flag rules of a tenant's environment: from Redis when warm (no SQL), else built and cached."""
    cache_key = document_key(tenant.slug, tenant.pk, environment)
    try:
        client = get_redis()
        built, raw = client.hmget(cache_key, ["ver", "rules"])
        # Exactly the caller's version, as the versioned key names used to demand: a caller holding an
        # older tenant row rebuilds from the database rather than trust a document of another version.
        if raw is not None and built is not None and int(built) == tenant.cache_version:
            return json.loads(raw)
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("flag cache unavailable, evaluating from the database: %s", exc)
        return _build_document(tenant.pk, environment).rules
    doc = _build_document(tenant.pk, environment)
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


def flags_evaluate(
    tenant: Tenant, subject: str | None = None, context: dict | None = None, *, environment: str = PRODUCTION
) -> dict[str, EvaluatedFlag]:
    """Return every flag evaluated for the tenant's environment (and subject; the tenant itself when None)."""
    subject = str(tenant.pk) if subject is None else str(subject)
    rules = tenant_rules(tenant, environment)
    return {key: _evaluate(key, rule, subject, context) for key, rule in rules.items()}


@dataclass(frozen=True)
class EvaluationRow:
    """One flag's answer for a subject and context, with what decided it in words (the evaluate tools)."""

    key: str
    kind: str
    description: str
    enabled: bool
    value: Any
    variant: str | None
    reason: str
    #: The 1-based position of the flag-level rule that decided, and that rule described ("" otherwise).
    rule: int | None
    rule_text: str

    @property
    def value_json(self) -> str:
        return json.dumps(self.value)


def flags_evaluate_explained(
    tenant: Tenant, subject: str | None = None, context: dict | None = None, *, environment: str = PRODUCTION
) -> list[EvaluationRow]:
    """Return every flag evaluated for the tenant's environment, subject and context, in key order, with the rule."""
    results = flags_evaluate(tenant, subject, context, environment=environment)
    flags = {f.key: f for f in Flag.objects.filter(key__in=list(results)).only("key", "kind", "description", "rules")}
    rows = []
    for key in sorted(results):
        result, flag = results[key], flags.get(key)
        text = ""
        if result.rule is not None and flag is not None and 0 < result.rule <= len(flag.rules):
            text = f"rule {result.rule}: {rule_text(flag.rules[result.rule - 1])}"
        rows.append(
            EvaluationRow(
                key=key,
                kind=flag.kind if flag is not None else "boolean",
                description=flag.description if flag is not None else "",
                enabled=result.enabled,
                value=result.value,
                variant=result.variant,
                reason=result.reason,
                rule=result.rule,
                rule_text=text,
            )
        )
    return rows


def flag_evaluate_from_rules(rules: dict, key: str, subject: str, context: dict | None = None) -> EvaluatedFlag | None:
    """Evaluate one flag from cached rules; None if the flag does not exist."""
    rule = rules.get(key)
    return None if rule is None else _evaluate(key, rule, subject, context)


def flag_is_enabled(tenant: Tenant, key: str, subject: str | None = None, *, environment: str = PRODUCTION) -> bool:
    """Return True if the flag is on for the tenant's environment (and subject); unknown flags are off."""
    subject = str(tenant.pk) if subject is None else str(subject)
    result = flag_evaluate_from_rules(tenant_rules(tenant, environment), key, subject)
    return bool(result and result.enabled)


def flags_explain(tenant: Tenant, *, from_database: bool = False, environment: str = PRODUCTION) -> list[ExplainedFlag]:
    """Return every visible (not archived) flag of a tenant's environment with its value, reason and editability.

    `from_database` reads the definitions as stored, without the cache and without warming it (the admin).
    """
    subject = str(tenant.pk)
    explained = []
    rules = _build_document(tenant.pk, environment).rules if from_database else tenant_rules(tenant, environment)
    for key, rule in sorted(rules.items()):
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
                kind=rule["entry"].get("kind", "boolean"),
                value=result.value,
                variant=result.variant,
                owner_variant=rule.get("owner_variant"),
                owner_variants=tuple((rule.get("platform") or {}).get("owner_variants") or ()),
                variants=tuple(v["key"] for v in rule["entry"].get("variants", ())),
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
