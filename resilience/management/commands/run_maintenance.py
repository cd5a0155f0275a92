"""Run periodic maintenance (outbox, webhooks, sessions, the Redis counters' flushes, ops history) until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED, EXIT_LOCKED, OperationCommand, UsageError
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.history.services import history_sample, maintenance_record_success

# deliver_outbox first: an invalidation Redis missed matters more than a late usage count.
TASKS = (
    "deliver_outbox",
    "deliver_webhooks",
    "cleanup_sessions",
    "flush_usage",
    "flush_apikey_last_used",
    "flush_flag_asks",
)
logger = logging.getLogger(__name__)


class Command(OperationCommand):
    help = (
        "Run deliver_outbox, deliver_webhooks, cleanup_sessions, flush_usage, flush_apikey_last_used and "
        "flush_flag_asks every "
        "SESSION_CLEANUP_INTERVAL and sample the ops "
        "pages' history every HISTORY_SAMPLE_INTERVAL until SIGTERM/SIGINT, "
        "finishing the task in progress before exiting. A failing task is logged and retried next round; a task "
        "another copy is running is skipped. With --once, exits 1 if a task failed (for cron)."
    )
    supports_dry_run = False

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval", type=float, help="Seconds between rounds (default: SESSION_CLEANUP_INTERVAL)."
        )
        parser.add_argument("--once", action="store_true", help="Run one round and exit.")
        parser.add_argument(
            "--heartbeat-file",
            metavar="PATH",
            help="Touch PATH at start and after every wake-up (at least every HISTORY_SAMPLE_INTERVAL outside "
            "tasks), for `python -m agentapi_admin.healthcheck --heartbeat PATH`.",
        )

    def run(self, **options) -> dict:
        interval = options["interval"] if options["interval"] is not None else settings.SESSION_CLEANUP_INTERVAL
        if interval <= 0:
            raise UsageError("--interval must be a positive number of seconds, e.g. --interval 300.")
        sample_every = settings.RESILIENCE_HISTORY_INTERVAL
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        rounds = failures = skipped = samples = 0
        tasks_due = 0.0
        beat = self._heartbeat(options.get("heartbeat_file"))
        try:
            beat()
            while not stop.is_set():
                if time.monotonic() >= tasks_due:
                    tasks_due = time.monotonic() + interval
                    rounds += 1
                    for task in TASKS:
                        try:
                            call_command(task, json=self.as_json, stdout=self.stdout, stderr=self.stderr)
                        except CommandError as exc:
                            if exc.returncode == EXIT_LOCKED:
                                skipped += 1  # another maintenance loop (a second replica) is doing it
                                self.stderr.write(f"run_maintenance: {task} skipped: {exc}")
                            else:
                                failures += 1
                                self.stderr.write(f"run_maintenance: {task} failed: {exc}")
                        else:
                            maintenance_record_success(task=task)
                samples += self._sample(sample_every)
                beat()
                if options["once"]:
                    break
                stop.wait(max(0.05, min(sample_every, tasks_due - time.monotonic())))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        summary: dict[str, int | str] = {
            "rounds": rounds,
            "task_failures": failures,
            "tasks_skipped": skipped,
            "history_samples": samples,
        }
        if options["once"] and failures:
            summary["exit_code"] = EXIT_FAILED
            summary["error"] = f"{failures} maintenance task(s) failed; their errors are above."
        return summary

    @staticmethod
    def _heartbeat(path: str | None):
        """Return a callback touching `path` (a no-op without one); failures to write are usage errors."""
        if not path:
            return lambda: None
        heartbeat = Path(path)

        def beat() -> None:
            try:
                heartbeat.touch()
            except OSError as exc:
                raise UsageError(f"--heartbeat-file {path}: cannot write it ({exc}); choose a writable path.") from exc

        return beat

    @staticmethod
    def _sample(every: float) -> int:
        """Record one history sample (advisory: a Redis failure is logged, never fatal)."""
        if not settings.RESILIENCE_REDIS_ENABLED:
            return 0
        try:
            written = history_sample(interval=every)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.warning("run_maintenance: history sample skipped: %s: %s", type(exc).__name__, exc)
            return 0
        maintenance_record_success(task="history_sample")
        return int(any(value != "skipped" for value in written.values()))
