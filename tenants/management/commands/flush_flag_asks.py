"""Fold the asked-flags counters (agentapi:flag-asks:{t:<slug>}:<tenant id>:<day>) into FlagAskDaily."""

from __future__ import annotations

from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_REDIS_DOWN, OperationCommand, UsageError
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants.services.flagasks import AsksFlushReport, flag_asks_flush_batch, flag_asks_prune, flag_asks_scan_batches


class Command(OperationCommand):
    help = (
        "Add what the per-tenant daily asked-flags counters in Redis grew by since the last run to the "
        "per-flag daily totals (FlagAskDaily), which the stale-flag report reads. Each ask is added once: "
        "running it twice, beside live traffic or after a Redis restart counts nothing twice. Run it more "
        "often than every 8 days (the counters' lifetime); run_maintenance does."
    )
    lock_name = "flush_flag_asks"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Keys per SCAN page and transaction.")

    def run(self, **options) -> dict:
        if not 1 <= options["batch_size"] <= 100_000:
            raise UsageError("--batch-size must be a whole number from 1 to 100000, e.g. --batch-size 500.")
        report = AsksFlushReport()
        try:
            for batch in self.progress(flag_asks_scan_batches(options["batch_size"]), description="tenant-days"):
                flag_asks_flush_batch(batch, report=report, dry_run=self.dry_run)
                self.heartbeat()
        except REDIS_UNAVAILABLE_ERRORS as exc:
            raise CommandError(
                f"Redis is unreachable ({exc}); check REDIS_URL. Counters stay in Redis for 8 days: retry later.",
                returncode=EXIT_REDIS_DOWN,
            ) from exc
        flag_asks_prune(report=report, dry_run=self.dry_run)
        return {
            "keys": report.keys,
            "asks_added": report.asks_added,
            "rows_written": report.rows_written,
            "skipped": report.skipped,
            "checkpoints_pruned": report.checkpoints_pruned,
            "days": sorted(str(day) for day in report.days),
        }
