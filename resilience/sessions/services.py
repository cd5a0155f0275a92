"""Revoke sessions (audited) and clean up expired and orphaned ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from resilience.exceptions import SessionNotFound
from resilience.sessions.backends.base import session_ref
from resilience.sessions.backends.db import DatabaseIndexMixin
from resilience.sessions.backends.redis import index_key
from resilience.sessions.selectors import session_engine, sessions_for_user
from tenants.services.audit import audit_record

# Memory bound: only this many live members of one user's index are checked for orphans per run.
MAX_MEMBERS_PER_INDEX = 10_000


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
            action="session.revoke",
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
            action="session.revoke_all",
            obj=user,
            before={"sessions": refs},
            after={"sessions": [session_ref(except_key)] if except_key else []},
            reason=reason,
            ip=ip,
        )
        session_engine().delete_for_user_id(str(user.pk), except_key=except_key)
    return len(refs)


@dataclass
class SessionCleanupReport:
    """What one cleanup run found: index keys scanned, members and rows removed (or that would be)."""

    index_keys: int = 0
    expired_entries: int = 0
    orphaned_entries: int = 0
    expired_rows: int = 0
    batches: int = 0


def _index_batches(client, batch_size: int) -> Iterator[list[bytes]]:
    """Yield the names of session-index keys, at most `batch_size` per SCAN page."""
    cursor = 0
    pattern = index_key("") + "*"
    while True:
        cursor, names = client.scan(cursor=cursor, match=pattern, count=batch_size)
        # COUNT is only a hint (a small keyspace comes back whole): cut pages to the batch size.
        for start in range(0, len(names), batch_size):
            yield names[start : start + batch_size]
        if not cursor:
            return


def sessions_index_cleanup_batch(client, names: list[bytes], *, report: SessionCleanupReport, dry_run: bool) -> None:
    """Drop expired members and members whose session data is gone from these index keys (3 round trips)."""
    store_class = session_engine()
    cache = store_class()._cache
    now = int(time.time() * 1000)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            if dry_run:
                pipe.zcount(name, "-inf", now)
            else:
                pipe.zremrangebyscore(name, "-inf", now)
            pipe.zrangebyscore(name, now + 1, "+inf", start=0, num=MAX_MEMBERS_PER_INDEX)
        replies = pipe.execute()
    members_of = {}
    for name, expired, members in zip(names, replies[::2], replies[1::2], strict=True):
        report.expired_entries += expired
        if members:
            members_of[name] = [m.decode() for m in members]
    checks = [(name, member) for name, members in members_of.items() for member in members]
    if checks:
        with client.pipeline(transaction=False) as pipe:
            for _, member in checks:
                pipe.exists(cache.make_key(store_class.cache_key_prefix + member))
            alive = pipe.execute()
        orphans: dict[bytes, list[str]] = {}
        for (name, member), ok in zip(checks, alive, strict=True):
            if not ok:
                orphans.setdefault(name, []).append(member)
        report.orphaned_entries += sum(len(m) for m in orphans.values())
        if orphans and not dry_run:
            with client.pipeline(transaction=False) as pipe:
                for name, members in orphans.items():
                    pipe.zrem(name, *members)
                pipe.execute()
    report.index_keys += len(names)
    report.batches += 1


def sessions_cleanup(*, batch_size: int = 1000, dry_run: bool = False, tick=None) -> SessionCleanupReport:
    """Remove expired and orphaned session-index entries and expired session rows, batch by batch."""
    report = SessionCleanupReport()
    store_class = session_engine()
    tick = tick or (lambda: None)
    if issubclass(store_class, DatabaseIndexMixin):
        model = store_class.get_model_class()
        while True:
            expired = model.objects.filter(expire_date__lt=timezone.now())
            keys = list(expired.values_list("session_key", flat=True)[:batch_size])
            if dry_run:
                report.expired_rows = expired.count()
                break
            if not keys:
                break
            # One short transaction per batch: a huge backlog never holds a long lock on the table.
            with transaction.atomic():
                report.expired_rows += model.objects.filter(
                    session_key__in=keys, expire_date__lt=timezone.now()
                ).delete()[0]
            report.batches += 1
            tick()
    if hasattr(store_class, "_redis") and settings.RESILIENCE_REDIS_ENABLED:
        client = store_class._redis()
        for names in _index_batches(client, batch_size):
            sessions_index_cleanup_batch(client, names, report=report, dry_run=dry_run)
            tick()
    return report
