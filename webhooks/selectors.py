"""Reads for the webhooks app: the endpoints an event goes to, the secrets that sign."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from resilience.breakers import breaker, registered_breakers
from tenants import crypto
from webhooks.models import PLATFORM_ONLY_EVENTS, EventType, WebhookDelivery, WebhookEndpoint


def tenant_event_choices() -> list[tuple[str, str]]:
    """Return the event types a tenant endpoint can subscribe to, as form choices."""
    return [(value, f"{value} — {label}") for value, label in EventType.choices if value not in PLATFORM_ONLY_EVENTS]


def endpoints_subscribed(*, event_type: str, tenant_id) -> list[WebhookEndpoint]:
    """Return the enabled endpoints that receive `event_type` about `tenant_id` (None: platform events)."""
    scope = Q(tenant__isnull=True)
    if tenant_id is not None and event_type not in PLATFORM_ONLY_EVENTS:
        scope |= Q(tenant_id=tenant_id)
    # event_types is a short list; filtered here because SQLite has no JSON containment lookup.
    return [e for e in WebhookEndpoint.objects.filter(scope, enabled=True) if event_type in e.event_types]


def endpoint_active_secrets(endpoint: WebhookEndpoint, *, at=None) -> list[str]:
    """Return the secrets that sign now, newest first."""
    at = at or timezone.now()
    signing = endpoint.secrets.exclude(expires_at__lte=at).order_by("-created_at", "-id")
    sealed = signing.values_list("sealed", flat=True)
    return [crypto.decrypt(token) for token in sealed]


def endpoints_of_tenant(tenant) -> QuerySet[WebhookEndpoint]:
    """Return a tenant's own endpoints (not the platform-wide ones)."""
    return WebhookEndpoint.objects.filter(tenant=tenant).order_by("id")


def endpoint_recent_deliveries(endpoint: WebhookEndpoint, *, limit: int = 20) -> QuerySet[WebhookDelivery]:
    """Return the endpoint's latest deliveries with their events, newest first."""
    return endpoint.deliveries.select_related("event").order_by("-id")[:limit]


def endpoint_breaker_state(endpoint: WebhookEndpoint) -> str:
    """Return the endpoint breaker's state without creating it: one never used is closed."""
    # Building the breaker would announce it in Redis: a page that only looks must not write.
    if endpoint.breaker_name not in registered_breakers():
        return "closed"
    return breaker(endpoint.breaker_name).current_state
