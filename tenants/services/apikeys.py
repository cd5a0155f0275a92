"""Writes for tenant API keys: `aak_<prefix>_<secret>`, only a SHA-256 of it is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from resilience.connection import get_redis
from tenants.cache import versions_bump
from tenants.exceptions import TenantsError
from tenants.keys import apikey_used_key
from tenants.models import PRODUCTION, ApiKey, Tenant
from tenants.services.environments import environment_require

KEY_PREFIX = "aak"
# aak_ + 8 hex prefix + _ + 43 base64url characters (32 random bytes).
KEY_PATTERN = re.compile(r"^aak_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
SCOPES = {"config:read": "read the bootstrap document", "flags:read": "evaluate single flags"}
# Short names for lists (admin, portal); SCOPES holds the full description.
SCOPE_LABELS = {"config:read": "Read config", "flags:read": "Evaluate flags"}
DEFAULT_SCOPES = ["config:read", "flags:read"]
APIKEY_FIELDS = ["name", "prefix", "environment", "scopes", "expires_at", "revoked_at"]


def apikey_hash(secret: str) -> str:
    """Return the SHA-256 hex digest stored for a full key."""
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def apikey_issue(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str] | None,
    actor: Any,
    expires_at: datetime | None = None,
    environment: str = PRODUCTION,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key reading one environment; return it with the full secret, which is shown once and never stored."""
    while True:
        prefix = secrets.token_hex(4)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return apikey_issue_known_secret(
        tenant=tenant,
        name=name,
        scopes=scopes,
        actor=actor,
        expires_at=expires_at,
        environment=environment,
        ip=ip,
        secret=secret,
    )


@transaction.atomic
def apikey_issue_known_secret(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str] | None,
    actor: Any,
    secret: str,
    expires_at: datetime | None = None,
    environment: str = PRODUCTION,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key whose secret the caller derived (seed data only); prefer apikey_issue."""
    match = KEY_PATTERN.match(secret)
    if match is None:
        raise TenantsError("secret must look like aak_<8 hex>_<43 base64url characters>.", field="secret")
    prefix = match.group(1)
    if ApiKey.objects.filter(Q(prefix=prefix) | Q(secret_hash=apikey_hash(secret))).exists():
        raise TenantsError("A key with this prefix already exists.", field="secret")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TenantsError("name: give the key a name of 1-100 characters.", field="name")
    scopes = list(DEFAULT_SCOPES if scopes is None else scopes)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TenantsError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}.", field="scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise TenantsError("expires_at must be in the future.", field="expires_at")
    environment = environment_require(tenant, environment, lock=True)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        environment=environment,
        name=name,
        prefix=prefix,
        secret_hash=apikey_hash(secret),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        actor=actor,
        action=AuditAction.APIKEY_ISSUE,
        tenant=tenant,
        obj=api_key,
        after=audit_snapshot(api_key, APIKEY_FIELDS),
        ip=ip,
    )
    return api_key, secret


@transaction.atomic
def apikey_revoke(*, api_key: ApiKey, actor: Any, ip: str | None = None) -> ApiKey:
    """Revoke a key; it answers 401 from the next request after commit."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is not None:
        return api_key
    before = audit_snapshot(locked, APIKEY_FIELDS)
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    # Both: the entry goes at once, and the version bump also defeats a racing refill.
    versions_bump([locked.tenant_id], forget=[locked.secret_hash])
    audit_record(
        actor=actor,
        action=AuditAction.APIKEY_REVOKE,
        tenant=locked.tenant,
        obj=locked,
        before=before,
        after=audit_snapshot(locked, APIKEY_FIELDS),
        ip=ip,
    )
    api_key.revoked_at = locked.revoked_at
    return api_key


@dataclass
class LastUsedFlushReport:
    tenants: int = 0
    keys_seen: int = 0
    keys_updated: int = 0
    skipped: int = 0


def apikey_last_used_tenant_batches(batch_size: int = 500) -> Iterator[list]:
    """Yield batches of (tenant id, slug) of tenants that own API keys (whose last-use hashes a flush reads)."""
    ids = ApiKey.objects.order_by("tenant_id").values_list("tenant_id", "tenant__slug").distinct()
    batch = []
    for tenant_id in ids.iterator(chunk_size=batch_size):
        batch.append(tenant_id)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def apikey_last_used_flush(*, tenant_ids: list, report: LastUsedFlushReport, dry_run: bool = False) -> None:
    """Copy the tenants' last-use times from Redis to `ApiKey.last_used_at`, never moving one backwards.

    Idempotent: the Redis hashes are only read (they expire on their own), and a row is
    written only when Redis holds a later time than the database. Raises the Redis error
    when Redis cannot be read, before anything is written.
    """
    client = get_redis()
    with client.pipeline(transaction=False) as pipe:
        for tenant_id, slug in tenant_ids:
            pipe.hgetall(apikey_used_key(slug, tenant_id))
        replies = pipe.execute()
    seen: dict[int, tuple[object, datetime]] = {}
    for (tenant_id, _slug), fields in zip(tenant_ids, replies, strict=True):
        report.tenants += 1 if fields else 0
        for raw_id, raw_ms in fields.items():
            try:
                seen[int(raw_id)] = (tenant_id, datetime.fromtimestamp(int(raw_ms) / 1000, UTC))
            except (TypeError, ValueError, OverflowError, OSError):
                report.skipped += 1
    if not seen:
        return
    stored = ApiKey.objects.filter(pk__in=seen).values_list("pk", "tenant_id", "last_used_at")
    newer = {}
    for pk, tenant_id, last_used_at in stored:
        owner, at = seen.pop(pk)
        if owner != tenant_id:
            report.skipped += 1  # a field naming another tenant's key: not this hash's to tell
            continue
        report.keys_seen += 1
        if last_used_at is None or last_used_at < at:
            newer[pk] = at
    report.skipped += len(seen)  # ids of keys that no longer exist
    report.keys_updated += len(newer)
    if dry_run or not newer:
        return
    # One UPDATE per batch; the guard in each branch keeps a concurrent newer write from being undone.
    ApiKey.objects.filter(pk__in=newer).update(
        last_used_at=Case(
            *[
                When(Q(pk=pk) & (Q(last_used_at__isnull=True) | Q(last_used_at__lt=at)), then=Value(at))
                for pk, at in newer.items()
            ],
            default=F("last_used_at"),
        )
    )
