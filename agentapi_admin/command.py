"""The base of every operations command: dry runs, JSON summaries, progress, a lock, exit codes.

Operators run these from a shell, cron or a compose service, so they share one
contract: `--dry-run` counts what would change and changes nothing, `--json`
prints one machine-readable summary, a progress bar (count, rate, ETA) appears on
stderr only when it is a terminal, usage errors exit 64, and a
Redis lock keeps two copies of the same command from running at once.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, cast

import redis
from django.core.management.base import BaseCommand, CommandError

from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, RedisDisabled

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REDIS_DOWN = 2
EXIT_LOCKED = 3
EXIT_USAGE = 64  # sysexits.h EX_USAGE: the command line is wrong; 2 stays "Redis unreachable"

EXIT_CODES_HELP = (
    "Exit codes: 0 done (or, for health checks, healthy); 1 failed or degraded; "
    "2 Redis unreachable; 3 another copy of this command holds its lock; 64 usage error (a bad option)."
)


class UsageError(CommandError):
    """The command line is wrong (a bad option or value): exit 64, with the fix in the message."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("returncode", EXIT_USAGE)
        super().__init__(*args, **kwargs)


def redis_down(exc: BaseException, hint: str = "") -> CommandError:
    """Return the CommandError (exit 2) for an unreachable Redis."""
    return CommandError(
        f"Redis is unreachable ({exc}); check REDIS_URL and that the server is running.{' ' + hint if hint else ''}",
        returncode=EXIT_REDIS_DOWN,
    )


class OperationCommand(BaseCommand):
    """A management command with the operations conventions; subclasses implement run()."""

    #: Name of the Redis lock held while the command runs; None for read-only commands.
    lock_name: str | None = None
    #: How long the lock lives without a heartbeat, so a killed run cannot block forever.
    lock_timeout: float = 600.0
    #: Whether the command accepts --dry-run.
    supports_dry_run: bool = True

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = EXIT_CODES_HELP

        def usage_error(message: str):
            # argparse would exit 2, the code reserved for "Redis unreachable".
            if parser.called_from_command_line:
                parser.print_usage(sys.stderr)
                parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")
            raise UsageError(f"Error: {message}")

        # argparse offers no hook for usage errors but overriding error() on the parser.
        parser.error = usage_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser) -> None:
        if self.supports_dry_run:
            parser.add_argument("--dry-run", action="store_true", help="Count what would change; change nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON summary instead of text.")
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser) -> None:
        """Add the command's own arguments."""

    def run(self, **options: Any) -> dict:
        """Do the work and return the summary counts."""
        raise NotImplementedError("subclasses of OperationCommand must provide run()")

    # ------------------------------------------------------------------ plumbing
    def handle(self, *args: Any, **options: Any) -> None:
        self.options = options
        self.dry_run = bool(options.get("dry_run"))
        self.as_json = bool(options.get("json"))
        self._lock = None
        started = time.monotonic()
        try:
            with self.locked():
                summary = self.run(**options)
        except RedisDisabled as exc:
            raise CommandError(
                f"{self.command_name} needs Redis, and REDIS_ENABLE=false: run it where Redis is configured.",
                returncode=EXIT_REDIS_DOWN,
            ) from exc
        except REDIS_UNAVAILABLE_ERRORS as exc:
            # Redis went away mid-run: what was done is done (batches commit one by one); rerun later.
            raise redis_down(exc, "Work finished so far is kept; run the command again.") from exc
        summary = {"command": self.command_name, "dry_run": self.dry_run, **summary}
        summary["seconds"] = round(time.monotonic() - started, 3)
        self.emit(summary)
        exit_code = summary.get("exit_code", EXIT_OK)
        if exit_code:
            raise CommandError(
                summary.get("error") or f"{self.command_name} finished with problems", returncode=exit_code
            )

    @property
    def command_name(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]

    def emit(self, summary: dict) -> None:
        """Print the summary as JSON or as one readable line."""
        if self.as_json:
            self.stdout.write(json.dumps(summary, default=str, sort_keys=True))
            return
        counts = ", ".join(
            f"{name}={value}" for name, value in summary.items() if name not in {"command", "dry_run", "exit_code"}
        )
        suffix = " (dry run: nothing changed)" if self.dry_run else ""
        self.stdout.write(f"{self.command_name}: {counts}{suffix}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the command's Redis lock for the duration of the run."""
        if self.lock_name is None:
            yield
            return
        from resilience.connection import get_redis, lock_key

        try:
            client = get_redis()
        except RedisDisabled:
            # Without Redis only database work remains, and its services lock the rows they change.
            yield
            return
        lock = client.lock(lock_key(self.lock_name), timeout=self.lock_timeout, blocking=False)
        try:
            acquired = lock.acquire()
        except REDIS_UNAVAILABLE_ERRORS as exc:
            raise redis_down(exc) from exc
        if not acquired:
            raise CommandError(
                f"Another {self.command_name} is running (lock {lock_key(self.lock_name)}); "
                f"wait for it to finish, or delete the key if that run died less than {self.lock_timeout:g}s ago.",
                returncode=EXIT_LOCKED,
            )
        self._lock = lock
        try:
            yield
        finally:
            # Expired or Redis gone: the lock's TTL frees it.
            with suppress(redis.RedisError):
                lock.release()
            self._lock = None

    def heartbeat(self) -> None:
        """Extend the lock; call it from long loops."""
        if self._lock is not None:
            self._lock.reacquire()

    def progress(
        self, items: Iterable, *, total: int | None = None, description: str = "", unit: str = "items"
    ) -> Iterator:
        """Yield items, drawing a progress bar (count, rate, ETA) only when stderr is a terminal."""
        with self._progress_bar(description or self.command_name, total=total, unit=unit) as advance:
            for item in items:
                yield item
                if advance is not None:
                    advance(1)

    @contextmanager
    def _progress_bar(self, description: str, *, total: int | None, unit: str) -> Iterator:
        """Yield advance(n) for a rich progress bar on stderr when it is a terminal, else None.

        stderr keeps stdout to the summary alone, so `command > file` still shows progress.
        """
        if self.as_json or not self.stderr.isatty():
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn() if total else TextColumn("{task.completed:.0f}"),
            TextColumn(unit),
            # Filled by advance(): rich's speed and time_remaining are None until it has two samples.
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
        ]
        # OutputWrapper is a text stream; the stubs type it as TextIOBase, not IO[str].
        console = Console(file=cast(IO[str], getattr(self.stderr, "_out", self.stderr)), force_terminal=True)
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description or self.command_name, total=total, rate="", eta="")

            def advance(count: int = 1) -> None:
                bar.advance(task, count)
                state = bar.tasks[task]
                speed = state.speed
                rate = f"{speed:,.0f} {unit}/s" if speed else ""
                eta = f"ETA {state.time_remaining:.0f}s" if state.time_remaining is not None else ""
                bar.update(task, rate=rate, eta=eta)
                bar.refresh()

            yield advance

    @contextmanager
    def ticking(
        self, description: str = "", *, pause: float = 0.0, total: int | None = None, unit: str = "batches"
    ) -> Iterator:
        """Yield a callback for services' batch loops: each call advances the progress bar and renews the lock.

        `tick(n)` counts n units of work (default 1); with `total` the bar shows an ETA.
        `pause` seconds of sleep per batch leave a busy Redis room for its traffic.
        """
        with self._progress_bar(description or self.command_name, total=total, unit=unit) as advance:

            def tick(count: int = 1) -> None:
                if advance is not None:
                    advance(count)
                self.heartbeat()
                if pause:
                    time.sleep(pause)

            yield tick
