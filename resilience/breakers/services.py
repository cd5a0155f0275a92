"""Operator actions on breakers: force open, force closed, reset; audited."""

from __future__ import annotations

import uuid

from django.db import transaction
from pybreaker import STATE_CLOSED, STATE_OPEN

from audit.models import AuditAction
from audit.services import audit_record
from resilience.breakers.events import record_transition, transition_token
from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import breaker, registered_breakers


def _named(name: str):
    if name == redis_breaker.name:
        raise ValueError("The Redis breaker lives in each process's memory; it cannot be forced from one process.")
    if name not in registered_breakers():
        raise ValueError(f"No breaker named {name!r}.")
    return breaker(name)


def _change(name: str, *, forced: str, target: str, action: AuditAction, actor, reason: str, ip=None) -> None:
    if not reason.strip():
        raise ValueError("A reason is required: it goes to the audit trail.")
    cb = _named(name)
    before = {"state": cb.current_state, "forced": cb.forced}
    with transaction.atomic():
        cb._operator_change = True
        try:
            cb.storage.forced = forced
            if target == STATE_OPEN:
                cb.open()
            else:
                cb.close()
                cb.storage.reset_counter()
        finally:
            cb._operator_change = False
        after = {"state": cb.current_state, "forced": cb.forced}
        label = getattr(actor, "get_username", lambda: "system")()
        record_transition(
            name,
            before["state"],
            target,
            token=f"operator:{uuid.uuid4().hex}",
            reason=f"{action.split('.', 1)[1]}: {reason}",
            actor=label,
            claim=(transition_token(cb, target),),
        )
        audit_record(
            actor=actor,
            action=action,
            object_type="resilience.breaker",
            object_id=name,
            before=before,
            after=after,
            reason=reason,
            ip=ip,
        )


def breaker_force_open(*, name: str, actor, reason: str, ip=None) -> None:
    """Pin a breaker open: calls fail fast until an operator closes or resets it."""
    _change(
        name, forced="open", target=STATE_OPEN, action=AuditAction.BREAKER_FORCE_OPEN, actor=actor, reason=reason, ip=ip
    )


def breaker_force_close(*, name: str, actor, reason: str, ip=None) -> None:
    """Pin a breaker closed: calls go through and failures are not counted until a reset."""
    _change(
        name,
        forced="closed",
        target=STATE_CLOSED,
        action=AuditAction.BREAKER_FORCE_CLOSE,
        actor=actor,
        reason=reason,
        ip=ip,
    )


def breaker_reset(*, name: str, actor, reason: str, ip=None) -> None:
    """Remove any pin, close the breaker and zero its counters."""
    _change(name, forced="", target=STATE_CLOSED, action=AuditAction.BREAKER_RESET, actor=actor, reason=reason, ip=ip)
