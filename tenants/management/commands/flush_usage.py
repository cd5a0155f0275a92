"""Persist Redis usage counters (agentapi:usage:<tenant>:<day>) into UsageDaily."""

from __future__ import annotations

import redis
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_REDIS_DOWN, OperationCommand, UsageError
from resilience.exceptions import RedisDisabled
from tenants.services.usage import FlushReport, usage_flush_batch, usage_scan_batches


class Command(OperationCommand):
    help = (
        "Copy the per-tenant daily usage counters from Redis into the database. Counters are absolute per UTC "
        "day, so running it twice, or while traffic flows, is safe: each run stores the latest count. "
        "Run it more often than every 8 days (the counters' lifetime); run_maintenance does."
    )
    lock_name = "flush_usage"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Keys per SCAN page and transaction.")

    def run(self, **options) -> dict:
        # Redis refuses a SCAN COUNT beyond a 64-bit integer; a bound keeps memory per batch sane too.
        if not 1 <= options["batch_size"] <= 100_000:
            raise UsageError("--batch-size must be a whole number from 1 to 100000, e.g. --batch-size 500.")
        report = FlushReport()
        try:
            for batch in self.progress(usage_scan_batches(options["batch_size"]), description="usage keys"):
                usage_flush_batch(batch, report=report, dry_run=self.dry_run)
                self.heartbeat()
        except (redis.RedisError, RedisDisabled) as exc:
            raise CommandError(
                f"Redis is unreachable ({exc}); check REDIS_URL. Counters stay in Redis for 8 days: retry later.",
                returncode=EXIT_REDIS_DOWN,
            ) from exc
        return {
            "keys": report.keys,
            "rows_written": report.rows_written,
            "rows_unchanged": report.rows_unchanged,
            "skipped": report.skipped,
            "days": sorted(str(day) for day in report.days),
        }
