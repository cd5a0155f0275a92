"""Deliver the outbox's pending messages (cache invalidations Redis missed) and report the backlog."""

from __future__ import annotations

from agentapi_admin.command import EXIT_REDIS_DOWN, OperationCommand
from tenants.services.outbox import OutboxUndelivered, outbox_backlog, outbox_deliver_pending


class Command(OperationCommand):
    help = (
        "Deliver every pending outbox message, oldest first (cache invalidations recorded while Redis was "
        "unreachable), and report what is still pending and how old the oldest is. Delivery is idempotent, so "
        "running it beside the app or a second copy is safe; run_maintenance runs it every round. "
        "With --dry-run, only reports the backlog. Exits 2 if Redis still refuses a delivery."
    )

    def run(self, **options) -> dict:
        delivered, error = 0, ""
        if not self.dry_run:
            try:
                delivered = outbox_deliver_pending().delivered
            except OutboxUndelivered as exc:
                error = f"Redis unreachable or refusing writes, messages stay pending ({exc}); retry later."
        backlog = outbox_backlog()
        summary: dict[str, object] = {
            "outbox_delivered": delivered,
            "outbox_pending": backlog.pending,
            "outbox_oldest_pending_seconds": backlog.oldest_pending_seconds,
        }
        if error:
            summary.update(exit_code=EXIT_REDIS_DOWN, error=error)
        return summary
