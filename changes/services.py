"""Writes for change requests: create (validated at once), approve, reject, cancel, and apply what is due.

A request is checked by applying it in a savepoint that is rolled back, so a schedule that
could not apply is refused when it is made, not discovered at its time. Applying calls the
tenants services as the author (`approved=True`), in the same transaction as the state
change, so a request applies at most once however many `run_maintenance` processes race.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record, audit_via
from changes.exceptions import ChangesError, InvalidChange, SelfApproval, TransitionRefused
from changes.models import APPROVE_PERMISSION, ChangeRequest
from changes.operations import Operation, operation_named, operation_permissions
from tenants.exceptions import TenantsError

log = logging.getLogger(__name__)

CANCEL_PERMISSION = "changes.change_changerequest"
SNAPSHOT_FIELDS = ("operation", "params", "state", "apply_at", "revert_at")


class _DryRun(Exception):
    """Raised to roll back the savepoint a request is checked in."""


@dataclass
class DueReport:
    """What one pass over the due requests did."""

    applied: int = 0
    reverted: int = 0
    failed: int = 0


def _snapshot(change: ChangeRequest) -> dict:
    snap = {name: getattr(change, name) for name in SNAPSHOT_FIELDS}
    for name in ("apply_at", "revert_at"):
        snap[name] = snap[name].isoformat() if snap[name] else None
    return snap


def _audit(change: ChangeRequest, *, action: str, actor: Any, before=None, after=None, reason="", ip=None) -> None:
    audit_record(
        actor=actor,
        action=action,
        tenant=change.tenant,
        obj=change,
        before=before,
        after=after,
        reason=reason,
        ip=ip,
    )


def _username(user) -> str:
    return user.get_username() if user is not None else "a user since removed"


def _is_staff(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def _check_author(operation: Operation, params: dict, author) -> None:
    if not getattr(author, "is_authenticated", False):
        raise PermissionDenied("A change request needs an author: sign in first.")
    for permission in operation_permissions(operation, params):
        if not (_is_staff(author) and author.has_perm(permission)):
            raise PermissionDenied(
                f"{author.get_username()} lacks the permission {permission} this change needs; "
                "a change request never does more than its author may."
            )


def _check_schedule(apply_at: datetime | None, revert_at: datetime | None, now: datetime) -> None:
    for name, value in (("apply_at", apply_at), ("revert_at", revert_at)):
        if value is not None and timezone.is_naive(value):
            raise InvalidChange(f"{name}: give a time zone (e.g. 2026-01-31T09:00:00Z).", field=name)
    if apply_at is not None and apply_at < now:
        raise InvalidChange(
            f"apply_at: {apply_at:%Y-%m-%d %H:%M} UTC is in the past; leave it empty to apply now.", field="apply_at"
        )
    start = apply_at or now
    if revert_at is not None and revert_at <= start:
        when = "apply_at" if apply_at is not None else "now"
        raise InvalidChange(f"revert_at: must be later than {when}.", field="revert_at")


def _dry_run(operation: Operation, params: dict, author) -> None:
    """Apply the change in a savepoint and roll it back; raise InvalidChange or PermissionDenied if it fails."""
    try:
        with transaction.atomic():
            target = operation.resolve(params)
            operation.apply(target, params, author)
            raise _DryRun
    except _DryRun:
        return
    except TenantsError as exc:
        raise InvalidChange(exc.message, field=exc.field) from exc


def change_request_check(
    *,
    operation: str,
    params: dict,
    author: Any,
    apply_at: datetime | None = None,
    revert_at: datetime | None = None,
    now: datetime | None = None,
) -> dict:
    """Return the cleaned params of a change `author` could schedule now; raise InvalidChange or PermissionDenied.

    Writes nothing: the change is applied in a savepoint that is rolled back.
    """
    now = now or timezone.now()
    op = operation_named(operation)
    params = op.clean(params)
    _check_author(op, params, author)
    _check_schedule(apply_at, revert_at, now)
    if revert_at is not None and not op.revertible:
        raise InvalidChange(
            f"revert_at: “{op.label}” is not put back automatically (for a promotion, promote the other way "
            "instead); leave it empty.",
            field="revert_at",
        )
    op.resolve(params)
    _dry_run(op, params, author)
    return params


@transaction.atomic
def change_request_create(
    *,
    operation: str,
    params: dict,
    author: Any,
    apply_at: datetime | None = None,
    revert_at: datetime | None = None,
    reason: str = "",
    ip: str | None = None,
    now: datetime | None = None,
) -> ChangeRequest:
    """Record a change to apply at `apply_at` (None: on approval, or at once), reverted at `revert_at` if given.

    A flag that requires approval makes it pending approval; otherwise it is scheduled, or applied
    now when no time is given. Refused at once (InvalidChange naming the field, PermissionDenied)
    if the change could not apply now or the author may not make it.
    """
    now = now or timezone.now()
    op = operation_named(operation)
    params = change_request_check(
        operation=operation, params=params, author=author, apply_at=apply_at, revert_at=revert_at, now=now
    )
    target = op.resolve(params)
    requires_approval = bool(op.approval_flags(target, params))
    if requires_approval:
        state = ChangeRequest.State.PENDING_APPROVAL
    else:
        state = ChangeRequest.State.SCHEDULED
    change = ChangeRequest.objects.create(
        operation=op.name,
        params=params,
        summary=op.describe(params)[:300],
        flag_key=op.filed_under(target, params)[:64],
        tenant=target.tenant,
        author=author,
        reason=reason[:500],
        state=state,
        requires_approval=requires_approval,
        apply_at=apply_at,
        revert_at=revert_at,
    )
    _audit(
        change, action=AuditAction.CHANGE_REQUEST_CREATE, actor=author, after=_snapshot(change), ip=ip, reason=reason
    )
    if not requires_approval and apply_at is None:
        _apply(change, now=now)
    return change


def _locked(change: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update(of=("self",)).select_related("author", "tenant").get(pk=change.pk)


def _refuse_state(change: ChangeRequest, verb: str, allowed) -> None:
    if change.state not in allowed:
        raise TransitionRefused(
            f"Change request #{change.pk} is {change.get_state_display().lower()}: it cannot be {verb}.",
            field="state",
        )


def _check_approver(actor, verb: str) -> None:
    if not (_is_staff(actor) and actor.has_perm(APPROVE_PERMISSION)):
        raise PermissionDenied(
            f"Only staff holding {APPROVE_PERMISSION} can {verb} change requests; ask someone who does."
        )


@transaction.atomic
def change_approve(
    *, change: ChangeRequest, actor: Any, ip: str | None = None, now: datetime | None = None
) -> ChangeRequest:
    """Approve a pending request (never one's own); it applies now unless its apply_at is still ahead."""
    _check_approver(actor, "approve")
    now = now or timezone.now()
    change = _locked(change)
    _refuse_state(change, "approved", (ChangeRequest.State.PENDING_APPROVAL,))
    if change.author_id == actor.pk:
        raise SelfApproval(
            f"You wrote change request #{change.pk}: another staff user must approve it.", field="approved_by"
        )
    before = _snapshot(change)
    change.approved_by, change.approved_at = actor, now
    change.state = ChangeRequest.State.APPROVED
    change.save()
    _audit(
        change, action=AuditAction.CHANGE_REQUEST_APPROVE, actor=actor, before=before, after=_snapshot(change), ip=ip
    )
    if change.apply_at is None or change.apply_at <= now:
        _apply(change, now=now)
    return change


@transaction.atomic
def change_reject(*, change: ChangeRequest, actor: Any, reason: str = "", ip: str | None = None) -> ChangeRequest:
    """Reject a pending request; it never applies."""
    _check_approver(actor, "reject")
    change = _locked(change)
    _refuse_state(change, "rejected", (ChangeRequest.State.PENDING_APPROVAL,))
    before = _snapshot(change)
    change.state = ChangeRequest.State.REJECTED
    change.closed_by, change.closed_at = actor, timezone.now()
    change.save()
    _audit(
        change,
        action=AuditAction.CHANGE_REQUEST_REJECT,
        actor=actor,
        before=before,
        after=_snapshot(change),
        reason=reason,
        ip=ip,
    )
    return change


@transaction.atomic
def change_cancel(*, change: ChangeRequest, actor: Any, reason: str = "", ip: str | None = None) -> ChangeRequest:
    """Cancel a request that has not applied, or the pending revert of one that has (the change then stays).

    Its author may cancel it; other staff need changes.change_changerequest.
    """
    change = _locked(change)
    is_author = actor is not None and change.author_id == getattr(actor, "pk", None)
    if not is_author and not (_is_staff(actor) and actor.has_perm(CANCEL_PERMISSION)):
        raise PermissionDenied(f"Only its author or staff holding {CANCEL_PERMISSION} can cancel a change request.")
    pending_revert = change.state == ChangeRequest.State.APPLIED and change.revert_at and not change.reverted_at
    if not pending_revert:
        _refuse_state(change, "cancelled", ChangeRequest.OPEN_STATES)
    before = _snapshot(change)
    if pending_revert:
        change.revert_at = None  # the change stays applied; only its revert is called off
        reason = reason or "revert cancelled: the change stays"
    else:
        change.state = ChangeRequest.State.CANCELLED
        change.closed_by, change.closed_at = actor, timezone.now()
    change.save()
    _audit(
        change,
        action=AuditAction.CHANGE_REQUEST_CANCEL,
        actor=actor,
        before=before,
        after=_snapshot(change),
        reason=reason,
        ip=ip,
    )
    return change


def _provenance(change: ChangeRequest, *, revert: bool = False) -> str:
    parts = [f"{'revert of ' if revert else ''}change request #{change.pk}", f"scheduled by {_username(change.author)}"]
    if change.approved_by_id:
        parts.append(f"approved by {_username(change.approved_by)}")
    return ", ".join(parts)


def _run(operation_name: str, params: dict, change: ChangeRequest, *, revert: bool) -> dict | None:
    """Apply one operation as the author in a savepoint; return the state it found. Raises on failure."""
    op = operation_named(operation_name)
    with transaction.atomic(), audit_via(_provenance(change, revert=revert)):
        target = op.resolve(params)
        if not revert and op.gated_flags is not None and change.approved_by_id is None:
            # What a promotion copies is read when it applies: a flag requiring approval may have joined since.
            gated = op.approval_flags(target, params)
            if gated:
                raise InvalidChange(
                    f"{', '.join(gated)} require{'s' if len(gated) == 1 else ''} approval now: "
                    "make this change again, as a request another staff user approves.",
                    field="approved_by",
                )
        before = op.state(target, params)
        op.apply(target, params, change.author)
        if not revert:
            inverse = op.inverse(target, params, before)
            change.inverse = None if inverse is None else {"operation": inverse[0], "params": inverse[1]}
    return before


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TenantsError | ChangesError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:2000]


def _apply(change: ChangeRequest, *, now: datetime) -> bool:
    """Apply a locked request in the caller's transaction; record applied or failed (never retried)."""
    before_state = _snapshot(change)
    try:
        change.before = _run(change.operation, change.params, change, revert=False)
    except Exception as exc:  # recorded, not retried: a failed change waits for a person, not a loop
        log.warning("change request #%s failed: %s", change.pk, _failure(exc))
        change.state, change.last_error = ChangeRequest.State.FAILED, _failure(exc)
        action = AuditAction.CHANGE_REQUEST_FAIL
    else:
        change.state, change.applied_at, change.last_error = ChangeRequest.State.APPLIED, now, ""
        action = AuditAction.CHANGE_REQUEST_APPLY
    change.save()
    with audit_via(_provenance(change)):
        _audit(
            change,
            action=action,
            actor=change.author,
            before=before_state,
            after={**_snapshot(change), "error": change.last_error} if change.last_error else _snapshot(change),
        )
    return change.state == ChangeRequest.State.APPLIED


def _revert(change: ChangeRequest, *, now: datetime) -> bool:
    """Undo an applied request with the inverse stored when it applied; record reverted or failed."""
    before_state = _snapshot(change)
    try:
        if change.inverse is not None:
            _run(change.inverse["operation"], change.inverse["params"], change, revert=True)
    except Exception as exc:
        log.warning("revert of change request #%s failed: %s", change.pk, _failure(exc))
        change.state, change.last_error = ChangeRequest.State.FAILED, f"revert: {_failure(exc)}"
        action = AuditAction.CHANGE_REQUEST_FAIL
    else:
        change.state, change.reverted_at = ChangeRequest.State.REVERTED, now
        action = AuditAction.CHANGE_REQUEST_REVERT
    change.save()
    with audit_via(_provenance(change, revert=True)):
        _audit(change, action=action, actor=change.author, before=before_state, after=_snapshot(change))
    return change.state == ChangeRequest.State.REVERTED


def _claim_next(query: Q, order: str, seen: set[int]) -> ChangeRequest | None:
    """Lock the next due request no other process holds (SKIP LOCKED), or return None."""
    return (
        ChangeRequest.objects.select_for_update(skip_locked=True)
        .filter(query)
        .exclude(pk__in=seen)
        .order_by(order, "id")
        .first()
    )


def changes_apply_due(*, now: datetime | None = None) -> DueReport:
    """Apply every request whose apply_at has come, then revert those whose revert_at has; each in its own transaction.

    Each request is locked with SKIP LOCKED and moved out of its due state in the transaction
    that applies it, so concurrent callers (replicas' run_maintenance) apply it exactly once.
    """
    now = now or timezone.now()
    report = DueReport()
    passes = (
        (Q(state__in=ChangeRequest.DUE_STATES, apply_at__lte=now), "apply_at", _apply, "applied"),
        (
            Q(state=ChangeRequest.State.APPLIED, revert_at__lte=now, reverted_at__isnull=True),
            "revert_at",
            _revert,
            "reverted",
        ),
    )
    for query, order, step, counter in passes:
        seen: set[int] = set()
        while True:
            with transaction.atomic():
                change = _claim_next(query, order, seen)
                if change is None:
                    break
                seen.add(change.pk)
                if step(change, now=now):
                    setattr(report, counter, getattr(report, counter) + 1)
                else:
                    report.failed += 1
    return report
