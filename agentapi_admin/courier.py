"""A courier: a daemon thread in each app worker running one delivery round every `interval` seconds.

The outbox and the webhooks each start one; a round that fails for a reason the round
does not handle itself is logged and the next round runs as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection

from resilience.exceptions import DATABASE_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)


class Courier:
    """One named background thread per process calling `deliver()` every interval."""

    def __init__(self, name: str, deliver: Callable[[], object]) -> None:
        self.name = name
        self.deliver = deliver
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, *, interval: float) -> bool:
        """Start the thread (idempotent; interval <= 0 starts nothing); return True if one was started."""
        if interval <= 0:
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._thread = threading.Thread(target=self._loop, args=(interval,), name=self.name, daemon=True)
            self._thread.start()
        return True

    def _loop(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            try:
                self.deliver()
            except DATABASE_UNAVAILABLE_ERRORS as exc:
                log.debug("%s: database unavailable (%s)", self.name, type(exc).__name__)
            except Exception:
                log.exception("%s: delivery round failed", self.name)
            finally:
                connection.close_if_unusable_or_obsolete()
