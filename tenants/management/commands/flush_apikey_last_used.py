"""Persist API-key last use (agentapi:apikey-used:<tenant>, key id -> epoch ms) into ApiKey.last_used_at."""

from __future__ import annotations

from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_REDIS_DOWN, OperationCommand
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants.services.apikeys import LastUsedFlushReport, apikey_last_used_flush, apikey_last_used_tenant_batches


class Command(OperationCommand):
    help = (
        "Copy API keys' last-use times from Redis (recorded by the service API at most once a minute per key) "
        "into the database. A time only ever moves forward, so running it twice, or beside live traffic, is "
        "safe. Run it more often than every 8 days (the hashes' lifetime); run_maintenance does."
    )
    lock_name = "flush_apikey_last_used"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Tenants per Redis pipeline and UPDATE.")

    def run(self, **options) -> dict:
        if not 1 <= options["batch_size"] <= 100_000:
            raise CommandError("--batch-size must be a whole number from 1 to 100000, e.g. --batch-size 500.")
        report = LastUsedFlushReport()
        try:
            batches = apikey_last_used_tenant_batches(options["batch_size"])
            for batch in self.progress(batches, description="tenants"):
                apikey_last_used_flush(tenant_ids=batch, report=report, dry_run=self.dry_run)
                self.heartbeat()
        except REDIS_UNAVAILABLE_ERRORS as exc:
            raise CommandError(
                f"Redis is unreachable ({exc}); check REDIS_URL. Last-use times stay in Redis for 8 days: retry later.",
                returncode=EXIT_REDIS_DOWN,
            ) from exc
        return {
            "tenants": report.tenants,
            "keys_seen": report.keys_seen,
            "keys_updated": report.keys_updated,
            "skipped": report.skipped,
        }
