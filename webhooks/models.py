"""Webhook endpoints, their signing secrets, the events they subscribe to and the delivery log.

An event row and one delivery row per subscribed endpoint are written in the
transaction of the change they describe; a worker outside any request sends them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class EventType(models.TextChoices):
    """Every event a webhook endpoint can subscribe to."""

    FLAG_CHANGED = "flag.changed", "flag definition created or changed"
    SEGMENT_CHANGED = "segment.changed", "segment created, changed or deleted"
    OVERRIDE_SET = "override.set", "tenant override set by a platform admin"
    OVERRIDE_CLEARED = "override.cleared", "tenant override cleared"
    OWNER_TOGGLED = "owner.toggled", "tenant owner switched a feature (or an admin reset that choice)"
    ENVIRONMENT_PROMOTED = "environment.promoted", "one of a tenant's environments promoted onto another"
    TENANT_STATUS_CHANGED = "tenant.status_changed", "tenant suspended, resumed or deleted"
    KEY_ISSUED = "key.issued", "API key issued"
    KEY_REVOKED = "key.revoked", "API key revoked"
    BREAKER_OPENED = "breaker.opened", "circuit breaker opened"
    BREAKER_CLOSED = "breaker.closed", "circuit breaker closed"


REDELIVER_PERMISSION = "webhooks.redeliver"

# Events about no tenant in particular reach platform-wide endpoints only.
PLATFORM_ONLY_EVENTS = frozenset(
    {EventType.FLAG_CHANGED, EventType.SEGMENT_CHANGED, EventType.BREAKER_OPENED, EventType.BREAKER_CLOSED}
)


class WebhookEndpoint(models.Model):
    """A URL that receives signed events: platform-wide (no tenant) or one tenant's."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        help_text="Empty: a platform-wide endpoint that receives every tenant's events.",
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        scope = self.tenant.slug if self.tenant is not None else "platform"
        return f"{scope}: {self.url}"

    @property
    def breaker_name(self) -> str:
        """Return the name of this endpoint's circuit breaker (shown on the breakers page)."""
        return f"webhook.{self.pk}"


class WebhookSecret(models.Model):
    """A signing secret (`whsec_<base64>`, sealed at rest); one with a passed `expires_at` no longer signs."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    sealed = models.TextField(editable=False)
    hint = models.CharField(max_length=16, editable=False, help_text="The first characters, for recognition.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hint}…"


class WebhookEvent(models.Model):
    """One change, as receivers see it: `webhook-id` is `id`, the body is `payload`."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    type = models.CharField(max_length=40, choices=EventType.choices, db_index=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: pending until a 2xx, failed after the retry window."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    manual = models.BooleanField(default=False, help_text="Queued by an operator's redelivery.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker sending it holds it until then; a worker that died lets it go at that time.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_response_excerpt = models.TextField(blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("redeliver", "Can send a webhook delivery again (audited)")]
        indexes = [models.Index(fields=["endpoint", "status", "id"], name="webhooks_delivery_queue")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.started_at:%Y-%m-%d %H:%M:%S}"
