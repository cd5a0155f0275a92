"""Breaker transitions recorded once in a capped Redis stream, whichever process notices them first."""

from __future__ import annotations

import logging
import os
import socket
import time
from functools import cache
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string
from pybreaker import CircuitBreakerListener

from agentapi_admin import metrics
from resilience import lua
from resilience.breakers.keys import events_key, seen_key
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

EVENTS_MAXLEN = 1000  # entries kept in agentapi:cb:events (approximately: MAXLEN ~)
DEDUP_SECONDS = 24 * 3600

# Record the event only if no process recorded this (breaker, state, opening) yet.
RECORD = lua.register("breakers.record", Path(__file__).resolve().parent / "lua" / "record.lua")

__all__ = ["DEDUP_SECONDS", "EVENTS_MAXLEN", "TransitionRecorder", "events_key", "record_transition"]


def record_transition(
    name: str, old: str, new: str, *, token: str, reason: str = "", actor: str = "", claim: tuple[str, ...] = ()
) -> str | None:
    """Append one transition to the stream unless `token` was already recorded; return the entry id.

    `claim` marks other tokens as recorded too, so the listeners of other processes
    noticing an operator's change do not record it a second time.
    """
    fields = {
        "breaker": name,
        "from": old or "",
        "to": new,
        "at": f"{time.time():.3f}",
        "by": f"{socket.gethostname()}:{os.getpid()}",
        "reason": reason,
        "actor": actor,
    }
    flat = [part for pair in fields.items() for part in pair]
    try:
        keys = [seen_key(name, token), events_key(), *(seen_key(name, t) for t in claim)]
        entry = RECORD.run(get_redis(), keys, [DEDUP_SECONDS, EVENTS_MAXLEN, *flat])
    except REDIS_UNAVAILABLE_ERRORS as exc:
        logger.warning("breaker %s: %s -> %s not recorded (%s)", name, old, new, exc)
        return None
    if entry is None:
        return None  # another process recorded it (and told the receivers)
    for receiver in transition_receivers():
        try:
            receiver(name=name, old=old or "", new=new, reason=reason, actor=actor)
        except Exception:
            # Best-effort by contract: a transition happens outside any transaction of ours.
            logger.exception("breaker %s: receiver %s failed", name, receiver)
    return entry.decode() if isinstance(entry, bytes) else entry


@cache
def transition_receivers() -> tuple:
    """Return the functions named in settings.RESILIENCE_BREAKER_TRANSITION_RECEIVERS."""
    return tuple(import_string(p) for p in getattr(settings, "RESILIENCE_BREAKER_TRANSITION_RECEIVERS", ()))


class TransitionRecorder(CircuitBreakerListener):
    """pybreaker listener writing state changes to `agentapi:cb:events`, deduplicated across processes."""

    def state_change(self, cb, old_state, new_state) -> None:
        old = getattr(old_state, "name", "") or ""
        new = new_state.name
        if old == new:
            return
        metrics.breaker_transition(cb.name, new)
        if getattr(cb, "_operator_change", False):
            return  # the service records it with the actor and reason
        logger.log(logging.WARNING if new == "open" else logging.INFO, "breaker %s: %s -> %s", cb.name, old, new)
        record_transition(cb.name, old, new, token=transition_token(cb, new))


def transition_token(cb, new: str) -> str:
    """Return the dedup token of a change to `new`: the same in every process noticing it."""
    # One opening starts one cycle (open -> half-open -> closed); its timestamp tells
    # the processes noticing the same change apart from a later, separate change.
    opened_at = cb._state_storage.opened_at
    stamp = int(opened_at.timestamp()) if opened_at else 0
    return f"{new}:{stamp}"
