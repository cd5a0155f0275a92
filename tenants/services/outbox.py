"""The outbox: effects recorded in the transaction of the change they follow, delivered after commit.

A delivery that fails (Redis away, a partition) leaves its row pending; the next
catch-up of any process, `deliver_outbox` and `run_maintenance` retry it until it
lands. Handlers must be idempotent: a row may be delivered more than once.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import cache

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from agentapi_admin.courier import Courier
from tenants.models import OutboxMessage

log = logging.getLogger(__name__)

# topic -> dotted path of `deliver(payload: dict) -> None`, which raises if the effect did not land.
HANDLERS = {
    "tenants.cache": "tenants.cache.invalidation_deliver",
}
BATCH = 200


class OutboxUndelivered(Exception):
    """A message could not be delivered; it stays pending."""


@dataclass
class OutboxReport:
    """What a drain delivered and what is still waiting."""

    delivered: int = 0
    pending: int = 0
    oldest_pending_seconds: float = 0.0


@cache
def _handler(topic: str):
    try:
        return import_string(HANDLERS[topic])
    except KeyError:
        raise OutboxUndelivered(f"no outbox handler for topic {topic!r}; add it to HANDLERS") from None


def outbox_record(*, topic: str, payload: dict) -> OutboxMessage:
    """Record an effect in the current transaction and deliver it after commit."""
    _handler(topic)  # an unknown topic fails the write, not a later delivery
    message = OutboxMessage.objects.create(topic=topic, payload=payload)
    transaction.on_commit(lambda: _deliver_after_commit(message))
    return message


def _deliver_after_commit(message: OutboxMessage) -> None:
    try:
        outbox_deliver(messages=[message])
    except OutboxUndelivered as exc:
        # Committed and recorded: a later catch-up, deliver_outbox or run_maintenance delivers it.
        log.warning("outbox: %s left pending: %s", message, exc)


def outbox_deliver(*, messages: list[OutboxMessage]) -> int:
    """Deliver messages in order and mark them delivered; raise OutboxUndelivered at the first failure."""
    delivered = []
    try:
        for message in messages:
            try:
                _handler(message.topic)(message.payload)
            except Exception as exc:
                OutboxMessage.objects.filter(pk=message.pk).update(
                    attempts=message.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:500]
                )
                raise OutboxUndelivered(f"{message}: {type(exc).__name__}: {exc}") from exc
            delivered.append(message.pk)
    finally:
        if delivered:
            OutboxMessage.objects.filter(pk__in=delivered).update(delivered_at=timezone.now())
    return len(delivered)


def outbox_deliver_pending(*, topics: list[str] | None = None) -> OutboxReport:
    """Deliver every pending message (oldest first); raise OutboxUndelivered if one still fails."""
    report = OutboxReport()
    last = 0
    while True:
        pending = OutboxMessage.objects.filter(delivered_at__isnull=True, pk__gt=last).order_by("pk")
        if topics is not None:
            pending = pending.filter(topic__in=topics)
        batch = list(pending[:BATCH])
        if not batch:
            return report
        report.delivered += outbox_deliver(messages=batch)
        last = batch[-1].pk


def outbox_backlog() -> OutboxReport:
    """Return how many messages wait for delivery and the age of the oldest."""
    pending = OutboxMessage.objects.filter(delivered_at__isnull=True)
    oldest = pending.order_by("pk").values_list("created_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return OutboxReport(pending=pending.count(), oldest_pending_seconds=round(age, 3))


def _courier_round() -> None:
    if OutboxMessage.objects.filter(delivered_at__isnull=True).exists():
        with contextlib.suppress(OutboxUndelivered):  # Redis is still away: the row waits for the next tick
            outbox_deliver_pending()


_courier = Courier("outbox-courier", _courier_round)


def outbox_courier_start(*, interval: float) -> bool:
    """Start this process's courier thread (idempotent); return True if one was started.

    Every `interval` seconds it looks for pending rows (one query on a partial index) and
    delivers them. It is what bounds staleness when the process that committed a change
    is gone before Redis is reachable again and no other process saw the outage: without
    it, such a row would wait for the next `run_maintenance` round.
    """
    return _courier.start(interval=interval)
