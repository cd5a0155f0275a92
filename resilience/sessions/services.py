"""Revoke sessions (audited) and clean up expired and orphaned ones."""

from __future__ import annotations

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from resilience.exceptions import SessionNotFound
from resilience.sessions.backends.base import SessionCleanupReport, session_ref
from resilience.sessions.selectors import session_engine, sessions_for_user


def session_revoke(*, session_key: str, actor, reason: str = "", ip: str | None = None) -> str:
    """Delete one session and audit it; return the user id it belonged to."""
    store = session_engine()()
    owner = store.session_owner(session_key)
    if owner is None:
        raise SessionNotFound("That session has already ended.")
    with transaction.atomic():
        # The audit row goes first: if Redis refuses the delete, the row rolls back with it.
        audit_record(
            actor=actor,
            action=AuditAction.SESSION_REVOKE,
            object_type="session",
            object_id=session_ref(session_key),
            before={"user_id": owner},
            reason=reason,
            ip=ip,
        )
        store.delete(session_key)
    return owner


def sessions_revoke_all(*, user, actor, except_key: str | None = None, reason: str = "", ip: str | None = None) -> int:
    """Delete every session of `user` except `except_key`, audit it; return how many were live."""
    refs = [info.ref for info in sessions_for_user(user) if info.session_key != except_key]
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.SESSION_REVOKE_ALL,
            obj=user,
            before={"sessions": refs},
            after={"sessions": [session_ref(except_key)] if except_key else []},
            reason=reason,
            ip=ip,
        )
        session_engine().delete_for_user_id(str(user.pk), except_key=except_key)
    return len(refs)


def sessions_cleanup(*, batch_size: int = 1000, dry_run: bool = False, tick=None) -> SessionCleanupReport:
    """Run the session engine's maintenance: expired and orphaned index entries and rows, batch by batch."""
    return session_engine().clean_up(batch_size=batch_size, dry_run=dry_run, tick=tick)
