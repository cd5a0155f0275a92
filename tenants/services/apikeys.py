"""Writes for tenant API keys: `aak_<prefix>_<secret>`, only a SHA-256 of it is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from tenants.cache import versions_bump
from tenants.exceptions import TenantsError
from tenants.models import ApiKey, Tenant

KEY_PREFIX = "aak"
# aak_ + 8 hex prefix + _ + 43 base64url characters (32 random bytes).
KEY_PATTERN = re.compile(r"^aak_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
SCOPES = {"config:read": "read the bootstrap document", "flags:read": "evaluate single flags"}
DEFAULT_SCOPES = ["config:read", "flags:read"]
APIKEY_FIELDS = ["name", "prefix", "scopes", "expires_at", "revoked_at"]


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
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; return it with the full secret, which is shown once and never stored."""
    while True:
        prefix = secrets.token_hex(4)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return apikey_issue_known_secret(
        tenant=tenant, name=name, scopes=scopes, actor=actor, expires_at=expires_at, ip=ip, secret=secret
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
    api_key = ApiKey.objects.create(
        tenant=tenant,
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


def apikey_mark_used(*, api_key_id: int, at: datetime) -> None:
    """Record that a key was used (telemetry, not audited; callers throttle it to once a minute)."""
    ApiKey.objects.filter(pk=api_key_id).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=at)).update(
        last_used_at=at
    )
