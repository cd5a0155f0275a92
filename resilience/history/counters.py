"""Refusal totals for the history, added to Redis in batches so a flood of 429s costs no extra round trip each."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.history import COUNTS_TTL, counts_key

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0


class DenialBatcher:
    """Count refusals per scope in process memory; add them to `hist:counts` at most once a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None

    def __call__(self, scope: str) -> None:
        with self._lock:
            self._pending[scope] += 1
            due = time.monotonic() - self._last_flush >= FLUSH_SECONDS
            if not due and self._timer is None:
                # The residue of a burst is flushed shortly after, even if no refusal follows.
                self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> None:
        """Add the pending counts to Redis now (dropped if Redis fails: the history is advisory)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._last_flush = time.monotonic()
            self._timer = None
        if not pending:
            return
        try:
            pipe = get_redis().pipeline(transaction=False)
            for scope, count in pending.items():
                pipe.hincrby(counts_key(), f"denied:{scope}", count)
            pipe.expire(counts_key(), COUNTS_TTL)
            pipe.execute()
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.debug("history: %d refusal(s) not counted (%s)", sum(pending.values()), type(exc).__name__)


denials = DenialBatcher()
