"""Writes for webhook endpoints and their signing secrets."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_snapshot
from resilience.breakers.registry import breaker_retire
from resilience.outbound import OutboundFailure, outbound_url_check
from tenants import crypto
from tenants.models import Tenant
from webhooks.exceptions import WebhooksError
from webhooks.models import EventType, WebhookEndpoint, WebhookSecret
from webhooks.signing import secret_generate

ENDPOINT_FIELDS = ["url", "description", "event_types", "enabled"]
URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def endpoint_url_check(url: str, *, tenant: Tenant | None) -> str:
    """Return `url` stripped if webhooks may call it for this tenant (None: platform-wide); else raise."""
    url = (url or "").strip()
    if not url:
        raise WebhooksError("url: give the http(s) URL that receives the events.", field="url")
    if len(url) > URL_MAX_LENGTH:
        raise WebhooksError(f"url: at most {URL_MAX_LENGTH} characters.", field="url")
    try:
        outbound_url_check(url)
    except OutboundFailure as exc:
        raise WebhooksError(f"url: {exc.message}", field="url") from None
    if tenant is not None and not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        host = urlsplit(url).hostname or ""
        literal = _ip_literal(host)
        if host == "localhost" or host.endswith(".localhost") or (literal and _is_private(literal)):
            raise WebhooksError(
                "url: a tenant endpoint must be reachable on the public internet "
                "(loopback, private and link-local addresses are refused).",
                field="url",
            )
    return url


def _ip_literal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""


def target_check(endpoint: WebhookEndpoint) -> None:
    """Raise OutboundFailure if a tenant endpoint's host resolves to a non-public address now."""
    if endpoint.tenant_id is None or settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return
    parts = urlsplit(endpoint.url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise OutboundFailure(OutboundFailure.CONNECTION, f"DNS lookup failed: {exc}") from exc
    for info in infos:
        if _is_private(str(info[4][0])):  # an IPv4 or IPv6 sockaddr: the host is a str
            raise OutboundFailure(
                OutboundFailure.INVALID_URL, f"{parts.hostname} resolves to {info[4][0]}, not a public address."
            )


def endpoint_event_types(event_types: Any) -> list[str]:
    """Return the event types sorted and deduplicated, or raise WebhooksError naming the field."""
    if not isinstance(event_types, list | tuple) or not event_types:
        raise WebhooksError("event_types: choose at least one event type.", field="event_types")
    unknown = sorted({str(t) for t in event_types} - set(EventType.values))
    if unknown:
        raise WebhooksError(
            f"event_types: unknown {', '.join(unknown)}; choose from {', '.join(EventType.values)}.",
            field="event_types",
        )
    return sorted(set(event_types))


def _description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise WebhooksError(f"description: at most {DESCRIPTION_MAX_LENGTH} characters.", field="description")
    return description


def _new_secret(endpoint: WebhookEndpoint) -> str:
    secret = secret_generate()
    WebhookSecret.objects.create(endpoint=endpoint, sealed=crypto.encrypt(secret), hint=secret[:12])
    return secret


@transaction.atomic
def endpoint_create(
    *,
    tenant: Tenant | None,
    url: str,
    event_types: list[str],
    actor: Any,
    description: str = "",
    enabled: bool = True,
    ip: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint (tenant None: platform-wide) with a first secret; return it and the secret, shown once."""
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant,
        url=endpoint_url_check(url, tenant=tenant),
        description=_description(description),
        event_types=endpoint_event_types(event_types),
        enabled=bool(enabled),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    secret = _new_secret(endpoint)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_ENDPOINT_CREATE,
        tenant=tenant,
        obj=endpoint,
        after=audit_snapshot(endpoint, ENDPOINT_FIELDS),
        ip=ip,
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, actor: Any, ip: str | None = None, **fields: Any) -> WebhookEndpoint:
    """Change an endpoint's URL, description, event types or enabled switch."""
    unknown = set(fields) - set(ENDPOINT_FIELDS)
    if unknown:
        raise WebhooksError(f"endpoint_update cannot change {', '.join(sorted(unknown))}.")
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = audit_snapshot(locked, ENDPOINT_FIELDS)
    if "url" in fields:
        locked.url = endpoint_url_check(fields["url"], tenant=locked.tenant)
    if "description" in fields:
        locked.description = _description(fields["description"])
    if "event_types" in fields:
        locked.event_types = endpoint_event_types(fields["event_types"])
    if "enabled" in fields:
        locked.enabled = bool(fields["enabled"])
    locked.save()
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_ENDPOINT_UPDATE,
        tenant=locked.tenant,
        obj=locked,
        before=before,
        after=audit_snapshot(locked, ENDPOINT_FIELDS),
        ip=ip,
    )
    for name in ENDPOINT_FIELDS:
        setattr(endpoint, name, getattr(locked, name))
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Any, ip: str | None = None) -> None:
    """Delete an endpoint with its secrets and delivery log."""
    before = audit_snapshot(endpoint, ENDPOINT_FIELDS)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_ENDPOINT_DELETE,
        tenant=endpoint.tenant,
        obj=endpoint,
        before=before,
        ip=ip,
    )
    name = endpoint.breaker_name
    endpoint.delete()
    transaction.on_commit(lambda: breaker_retire(name))


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, actor: Any, overlap: float | None = None, ip: str | None = None
) -> str:
    """Add a new secret; the current ones keep signing for `overlap` seconds (WEBHOOKS_SECRET_OVERLAP)."""
    overlap = settings.WEBHOOKS_SECRET_OVERLAP if overlap is None else overlap
    if overlap < 0:
        raise WebhooksError("overlap: give zero or more seconds.", field="overlap")
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    now = timezone.now()
    ends = now + timedelta(seconds=overlap)
    retiring = locked.secrets.filter(expires_at__isnull=True) | locked.secrets.filter(expires_at__gt=ends)
    retiring.update(expires_at=ends)
    secret = _new_secret(locked)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_SECRET_ROTATE,
        tenant=locked.tenant,
        obj=locked,
        after={"new_secret": secret[:12] + "…", "previous_secrets_expire_at": ends.isoformat()},
        ip=ip,
    )
    return secret


@dataclass
class ResealReport:
    """What a reseal changed, would change, and could not open."""

    resealed: int = 0
    would_reseal: int = 0
    already_current: int = 0
    undecryptable: list[str] = field(default_factory=list)


def webhook_secrets_reseal(*, dry_run: bool = False) -> ResealReport:
    """Re-encrypt every signing secret not sealed with the current TOKEN_ENCRYPTION_KEY (the secret is unchanged)."""
    report = ResealReport()
    for secret in WebhookSecret.objects.order_by("id").iterator():
        if not crypto.needs_rotation(secret.sealed):
            report.already_current += 1
            continue
        try:
            plain = crypto.decrypt(secret.sealed)
        except crypto.DecryptionError:
            report.undecryptable.append(f"endpoint {secret.endpoint_id} (secret {secret.hint}…)")
            continue
        if dry_run:
            report.would_reseal += 1
            continue
        WebhookSecret.objects.filter(pk=secret.pk, sealed=secret.sealed).update(sealed=crypto.encrypt(plain))
        report.resealed += 1
    return report
