"""A courier: a daemon thread in each app worker running one delivery round every `interval` seconds.

`wake()` (e.g. from `transaction.on_commit`) starts the next round at once: the request
thread only sets a flag, the courier's thread does the work.

The outbox and the webhooks each start one; a round that fails for a reason the round
does not handle itself is logged and the next round runs as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

from resilience.exceptions import DATABASE_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)


class _CourierThread(threading.Thread):
    """The delivery thread; `stopping` asks it to end after its current round."""

    stopping = False


class Courier:
    """One named background thread per process calling `deliver()` every interval."""

    def __init__(self, name: str, deliver: Callable[[], object]) -> None:
        self.name = name
        self.deliver = deliver
        self._thread: _CourierThread | None = None
        self._lock = threading.Lock()
        self._woken = threading.Event()

    def stop(self) -> None:
        """End the thread after its current round (tests; workers keep theirs until they exit)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stopping = True
            self._woken.set()
            thread.join(timeout=30)

    def wake(self) -> None:
        """Run the next round now instead of at the end of the interval (no-op without a thread)."""
        self._woken.set()

    def start(self, *, interval: float) -> bool:
        """Start the thread (idempotent; interval <= 0 starts nothing); return True if one was started."""
        if interval <= 0:
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._thread = _CourierThread(target=self._loop, args=(interval,), name=self.name, daemon=True)
            self._thread.start()
        return True

    def _loop(self, interval: float) -> None:
        me = threading.current_thread()
        while True:
            self._woken.wait(interval)
            self._woken.clear()
            if getattr(me, "stopping", False):
                return
            try:
                self.deliver()
            except DATABASE_UNAVAILABLE_ERRORS as exc:
                log.debug("%s: database unavailable (%s)", self.name, type(exc).__name__)
            except Exception:
                log.exception("%s: delivery round failed", self.name)
            finally:
                connection.close_if_unusable_or_obsolete()
