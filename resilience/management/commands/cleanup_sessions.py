"""Remove expired and orphaned session-index entries and expired database session rows."""

from __future__ import annotations

from agentapi_admin.command import OperationCommand, UsageError
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
        parser.add_argument(
            "--pause-ms",
            type=float,
            default=0.0,
            help="Sleep this long after each batch, to spare a busy Redis (default 0).",
        )

    def run(self, **options) -> dict:
        if not 1 <= options["batch_size"] <= 100_000:
            raise UsageError("--batch-size must be a whole number from 1 to 100000, e.g. --batch-size 1000.")
        if not 0 <= options["pause_ms"] <= 10_000:
            raise UsageError("--pause-ms must be from 0 to 10000 milliseconds, e.g. --pause-ms 5.")
        with self.ticking("session index batches", pause=options["pause_ms"] / 1000) as tick:
            report = sessions_cleanup(batch_size=options["batch_size"], dry_run=self.dry_run, tick=tick)
        return {
            "index_keys": report.index_keys,
            "expired_entries": report.expired_entries,
            "orphaned_entries": report.orphaned_entries,
            "expired_rows": report.expired_rows,
            "batches": report.batches,
        }
