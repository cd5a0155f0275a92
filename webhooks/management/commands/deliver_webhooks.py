"""Send the webhook deliveries that are due and report what is still waiting."""

from __future__ import annotations

from django.db.models import Min
from django.utils import timezone

from agentapi_admin.command import OperationCommand
from webhooks.models import WebhookDelivery
from webhooks.services.delivery import webhooks_deliver_due, webhooks_prune_log


class Command(OperationCommand):
    help = (
        "Send every due webhook delivery (each endpoint's in order, retries with backoff, the endpoint's breaker "
        "respected) and report what is pending and how old the oldest is. Safe beside the app's couriers and a "
        "second copy: each delivery is claimed before it is sent. Deletes delivered and failed deliveries older "
        "than WEBHOOKS_LOG_RETENTION. run_maintenance runs it every round. "
        "With --dry-run, only reports the backlog."
    )

    def run(self, **options) -> dict:
        summary: dict = {}
        if not self.dry_run:
            report = webhooks_deliver_due()
            summary.update(
                webhooks_delivered=report.delivered,
                webhooks_retrying=report.retrying,
                webhooks_failed=report.failed,
                webhooks_held_by_breaker=report.held_by_breaker,
                webhooks_log_pruned=webhooks_prune_log(),
            )
        pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
        summary.update(
            webhooks_pending=pending.count(),
            webhooks_oldest_pending_seconds=round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0.0,
        )
        return summary
