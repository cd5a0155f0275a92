"""Run the periodic maintenance (outbox delivery, session cleanup, usage flush) until SIGTERM."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED, EXIT_LOCKED, OperationCommand

# deliver_outbox first: an invalidation Redis missed matters more than a late usage count.
TASKS = ("deliver_outbox", "cleanup_sessions", "flush_usage")


class Command(OperationCommand):
    help = (
        "Run deliver_outbox, cleanup_sessions and flush_usage every SESSION_CLEANUP_INTERVAL until SIGTERM/SIGINT, "
        "finishing the task in progress before exiting. A failing task is logged and retried next round; a task "
        "another copy is running is skipped. With --once, exits 1 if a task failed (for cron)."
    )
    supports_dry_run = False

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval", type=float, help="Seconds between rounds (default: SESSION_CLEANUP_INTERVAL)."
        )
        parser.add_argument("--once", action="store_true", help="Run one round and exit.")

    def run(self, **options) -> dict:
        interval = options["interval"] if options["interval"] is not None else settings.SESSION_CLEANUP_INTERVAL
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds, e.g. --interval 300.")
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        rounds = failures = skipped = 0
        try:
            while not stop.is_set():
                rounds += 1
                for task in TASKS:
                    try:
                        call_command(task, json=True, stdout=self.stdout, stderr=self.stderr)
                    except CommandError as exc:
                        if exc.returncode == EXIT_LOCKED:
                            skipped += 1  # another maintenance loop (a second replica) is doing it
                            self.stderr.write(f"run_maintenance: {task} skipped: {exc}")
                        else:
                            failures += 1
                            self.stderr.write(f"run_maintenance: {task} failed: {exc}")
                if options["once"]:
                    break
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        summary = {"rounds": rounds, "task_failures": failures, "tasks_skipped": skipped}
        if options["once"] and failures:
            summary["exit_code"] = EXIT_FAILED
            summary["error"] = f"{failures} maintenance task(s) failed; their errors are above."
        return summary
