"""Remove expired and orphaned session-index entries and expired database session rows."""

from __future__ import annotations

from django.core.management.base import CommandError

from agentapi_admin.command import OperationCommand
from resilience.sessions.services import sessions_cleanup


class Command(OperationCommand):
    help = (
        "Drop expired and orphaned members of the per-user session indexes (agentapi:sessidx:*, SCAN in batches) "
        "and, for SESSION_STORAGE=db or cached_db, delete expired session rows in batches. Redis expires the "
        "cache sessions themselves; Django's clearsessions does nothing for them. Safe under traffic."
    )
    lock_name = "cleanup_sessions"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Index keys per SCAN page, rows per delete (default 1000)."
        )

    def run(self, **options) -> dict:
        if not 1 <= options["batch_size"] <= 100_000:
            raise CommandError("--batch-size must be a whole number from 1 to 100000, e.g. --batch-size 1000.")
        ticks = self.progress(iter(int, 1), description="session index batches")

        def tick(report) -> None:
            next(ticks)
            self.heartbeat()

        report = sessions_cleanup(batch_size=options["batch_size"], dry_run=self.dry_run, tick=tick)
        ticks.close()
        return {
            "index_keys": report.index_keys,
            "expired_entries": report.expired_entries,
            "orphaned_entries": report.orphaned_entries,
            "expired_rows": report.expired_rows,
            "batches": report.batches,
        }
