"""Delivery: send due webhook deliveries, one endpoint's in order, outside any request.

Per endpoint, only the oldest pending delivery (the head) is sent; the next one waits
until the head is delivered or given up on, so a receiver sees its events in the order
they were recorded. A failure schedules the head again after an exponential backoff
with jitter; after WEBHOOKS_RETRY_WINDOW it is marked failed and the queue moves on.
Each endpoint has a breaker (`webhook.<id>`): while it is open nothing is sent there.
A delivery is claimed (`claimed_until`) before it is sent, so two workers never send
the same one at once; a worker that dies mid-send lets the claim lapse and the
delivery is sent again: delivery is at-least-once, receivers dedupe by `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pybreaker import CircuitBreakerError

from agentapi_admin import metrics
from agentapi_admin.courier import Courier
from audit.models import AuditAction
from audit.services import audit_record
from resilience.breakers import breaker
from resilience.exceptions import DATABASE_UNAVAILABLE_ERRORS
from resilience.outbound import OutboundFailure, outbound_request
from tenants import crypto
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.selectors import endpoint_active_secrets
from webhooks.services.endpoints import target_check
from webhooks.signing import signature_header

log = logging.getLogger(__name__)

EXCERPT_CHARS = 1000
USER_AGENT = "agentapi-admin-webhooks/1"
CLAIM_MARGIN = 30.0  # seconds beyond the request timeout before another worker may take a delivery over
PER_ENDPOINT_ROUND = 100  # deliveries sent to one endpoint per round, so one busy queue cannot starve others


class ReceiverRefused(Exception):
    """The receiver answered with a status other than 2xx."""


@dataclass
class DeliveryReport:
    """What one round sent."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    held_by_breaker: int = 0


def retry_delay(attempts: int) -> float:
    """Return seconds before the next try after `attempts` failures: exponential, capped, jittered."""
    exponential = settings.WEBHOOKS_BACKOFF_BASE * 2 ** min(attempts - 1, 40)
    # Equal jitter: keeps the growth, and spreads the retries of deliveries that failed together.
    return min(settings.WEBHOOKS_BACKOFF_MAX, exponential) * random.uniform(0.5, 1.0)  # noqa: S311


def endpoint_breaker(endpoint: WebhookEndpoint):
    """Return the endpoint's circuit breaker (WEBHOOKS_BREAKER_FAILURES consecutive failures open it)."""
    return breaker(
        endpoint.breaker_name,
        fail_max=settings.WEBHOOKS_BREAKER_FAILURES,
        reset_timeout=settings.WEBHOOKS_BREAKER_RESET,
        success_threshold=1,
    )


def body_of(payload: dict) -> bytes:
    """Return the exact bytes sent (and signed) for an event payload."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhooks_deliver_due(*, now: datetime | None = None) -> DeliveryReport:
    """Send every due delivery of every enabled endpoint, each endpoint's in order."""
    now = now or timezone.now()
    report = DeliveryReport()
    endpoint_ids = (
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .order_by("endpoint_id")  # not the model's -id: DISTINCT would then keep one row per delivery
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    for endpoint_id in list(endpoint_ids):
        try:
            _deliver_endpoint(endpoint_id, now, report)
        except DATABASE_UNAVAILABLE_ERRORS:
            raise
        except Exception:
            # One endpoint's surprise must not hold back the others; its claim lapses and it is retried.
            log.exception("webhooks: endpoint %s skipped this round", endpoint_id)
    return report


def _deliver_endpoint(endpoint_id: int, now: datetime, report: DeliveryReport) -> None:
    for _ in range(PER_ENDPOINT_ROUND):
        head = (
            WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=WebhookDelivery.Status.PENDING)
            .select_related("event", "endpoint")
            .order_by("id")
            .first()
        )
        if head is None or head.next_attempt_at > now:
            return
        claim = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT + CLAIM_MARGIN)
        claimed = (
            WebhookDelivery.objects.filter(pk=head.pk, status=WebhookDelivery.Status.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .update(claimed_until=claim)
        )
        if not claimed:
            return  # another worker is sending this endpoint's head
        outcome = _attempt(head, now)
        metrics.webhook_delivery(outcome)
        if outcome == "delivered":
            report.delivered += 1
            continue
        if outcome == "held_by_breaker":
            report.held_by_breaker += 1
        elif outcome == "failed":
            report.failed += 1
            continue  # given up on: the queue moves on
        else:
            report.retrying += 1
        return


def _attempt(delivery: WebhookDelivery, now: datetime) -> str:
    endpoint, event = delivery.endpoint, delivery.event
    body = body_of(event.payload)
    timestamp = int(time.time())
    try:
        signature = signature_header(endpoint_active_secrets(endpoint), msg_id=event.id, timestamp=timestamp, body=body)
    except crypto.DecryptionError as exc:
        # Sealed with a key TOKEN_ENCRYPTION_KEY(S_OLD) no longer holds: nothing unsigned is ever sent.
        error = f"signing failed: {exc}; rotate the endpoint's secret"
        return _record(delivery, now, {"error": error, "latency": 0.0})
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    seen: dict[str, Any] = {}

    def post() -> None:
        seen["sent"] = True
        try:
            target_check(endpoint)
            response = outbound_request(
                endpoint.url,
                method="POST",
                headers=headers,
                body=body,
                timeout=settings.WEBHOOKS_TIMEOUT,
                max_bytes=settings.WEBHOOKS_RESPONSE_MAX_BYTES,
            )
        except OutboundFailure as exc:
            seen.update(status=exc.status, error=exc.message)
            raise
        seen.update(
            status=response.status,
            latency=response.elapsed_ms,
            excerpt=response.excerpt.decode("utf-8", "replace")[:EXCERPT_CHARS],
        )
        if not 200 <= response.status < 300:
            seen["error"] = f"HTTP {response.status}"
            raise ReceiverRefused(seen["error"])

    started = time.perf_counter()
    try:
        endpoint_breaker(endpoint).call(post)
    except CircuitBreakerError as exc:
        if not seen:
            # Open: nothing was sent. Look again when the breaker lets a trial through.
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                claimed_until=None,
                next_attempt_at=now + timedelta(seconds=settings.WEBHOOKS_BREAKER_RESET),
                last_error=f"not sent: {exc}"[:500],
            )
            return "held_by_breaker"
        # This failure is the one that opened the breaker: recorded like any other below.
    except (OutboundFailure, ReceiverRefused):
        pass
    except Exception as exc:  # a bug or a broken secret must not kill the courier
        log.exception("webhook delivery %s failed unexpectedly", delivery.pk)
        seen.setdefault("error", f"{type(exc).__name__}: {exc}")
    if "latency" not in seen:
        seen["latency"] = round((time.perf_counter() - started) * 1000, 2)
    return _record(delivery, now, seen)


def _record(delivery: WebhookDelivery, now: datetime, seen: dict) -> str:
    succeeded = "error" not in seen
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "claimed_until": None,
        "last_attempt_at": now,
        "last_status_code": seen.get("status"),
        "last_latency_ms": seen["latency"],
        "last_response_excerpt": seen.get("excerpt", ""),
        "last_error": seen.get("error", "")[:500],
    }
    if succeeded:
        outcome = "delivered"
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now)
    elif now >= delivery.created_at + timedelta(seconds=settings.WEBHOOKS_RETRY_WINDOW):
        outcome = "failed"
        fields["status"] = WebhookDelivery.Status.FAILED
    else:
        outcome = "retrying"
        fields["next_attempt_at"] = now + timedelta(seconds=retry_delay(attempts))
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            started_at=now,
            status_code=fields["last_status_code"],
            latency_ms=fields["last_latency_ms"],
            response_excerpt=fields["last_response_excerpt"],
            error=fields["last_error"],
            succeeded=succeeded,
        )
    return outcome


def webhooks_prune_log(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Delete finished deliveries (and events left without any) older than WEBHOOKS_LOG_RETENTION; return how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WEBHOOKS_LOG_RETENTION)
    finished = WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status=WebhookDelivery.Status.PENDING)
    pruned = 0
    while ids := list(finished.order_by("id").values_list("id", flat=True)[:batch]):
        WebhookDelivery.objects.filter(id__in=ids).delete()  # its attempts go with it
        pruned += len(ids)
    WebhookEvent.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()
    return pruned


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery, actor: Any, ip: str | None = None) -> WebhookDelivery:
    """Queue the delivery's event again for its endpoint, behind what is already pending there."""
    again = WebhookDelivery.objects.create(
        endpoint_id=delivery.endpoint_id, event_id=delivery.event_id, manual=True, next_attempt_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_REDELIVER,
        tenant=delivery.endpoint.tenant,
        obj=again,
        before={"delivery": delivery.pk, "status": delivery.status, "attempts": delivery.attempts},
        after={"delivery": again.pk, "event": delivery.event_id, "endpoint": delivery.endpoint_id},
        ip=ip,
    )
    return again


_courier = Courier("webhooks-courier", webhooks_deliver_due)


def webhooks_courier_start(*, interval: float) -> bool:
    """Start this process's webhook courier thread (idempotent); return True if one was started."""
    return _courier.start(interval=interval)


def webhooks_courier_wake() -> None:
    """Have this process's courier send at once what was just committed (no-op without a courier)."""
    _courier.wake()
