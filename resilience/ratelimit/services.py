"""Writes on the limiter's state: resets, audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.db import models, transaction

from audit.models import AuditAction
from audit.services import audit_record
from resilience.connection import decoded, get_redis
from resilience.ratelimit.keys import call_keys, index_pattern, state_key, state_pattern, tenant_index_key, tenant_label
from resilience.ratelimit.limiter import SCOPES
from resilience.ratelimit.selectors import _glob_escape


def _tenant_row(tenant) -> models.Model | None:
    # The audit row links the tenant when given its row; a bare label (a slug string) has none.
    return tenant if isinstance(tenant, models.Model) else None


def ratelimit_reset_identity(*, scope: str, tenant, identity: str, actor, reason: str, ip=None) -> bool:
    """Give one identity its full allowance back; return True if it had state."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    label, identity = tenant_label(tenant), str(identity)
    key, index, member = call_keys(scope, label, identity)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.RATELIMIT_RESET_IDENTITY,
            tenant=_tenant_row(tenant),
            object_type="ratelimit.identity",
            object_id=key,
            reason=reason,
            ip=ip,
        )
        # Redis last: if it fails, the exception rolls the audit row back with it.
        pipe = get_redis().pipeline(transaction=True)
        pipe.delete(key)
        pipe.zrem(index, member)
        deleted = pipe.execute()[0]
    return bool(deleted)


def ratelimit_reset_tenant(*, tenant, actor, reason: str, ip=None) -> int:
    """Give every identity of a tenant its full allowance back; return how many had state."""
    label = tenant_label(tenant)
    client = get_redis()
    index = tenant_index_key(label)
    with transaction.atomic():
        reset = 0
        cursor = 0
        while True:
            cursor, members = client.zscan(index, cursor=cursor, count=500)
            if members:
                # Each pair is (member, score); redis-py's type also admits RESP3's [member, score] lists.
                names = [decoded(cast(bytes, m)) for m, _ in members]
                pipe = client.pipeline(transaction=False)
                for name in names:
                    scope, _label, identity = name.split(":", 2)
                    pipe.delete(state_key(scope, label, identity))
                reset += sum(pipe.execute())
            if not cursor:
                break
        client.delete(index)
        audit_record(
            actor=actor,
            action=AuditAction.RATELIMIT_RESET_TENANT,
            tenant=_tenant_row(tenant),
            object_type="ratelimit.tenant",
            object_id=label,
            after={"identities_reset": reset},
            reason=reason,
            ip=ip,
        )
    return reset


@dataclass
class ResetReport:
    """What a pattern reset deleted (or, in a dry run, would delete)."""

    state_keys: int = 0
    index_entries: int = 0


def _scan_batches(client, pattern: str, batch_size: int):
    cursor = 0
    while True:
        cursor, names = client.scan(cursor=cursor, match=pattern, count=batch_size)
        for start in range(0, len(names), batch_size):
            yield names[start : start + batch_size]
        if not cursor:
            return


def _zscan_batches(client, index: str, pattern: str, batch_size: int):
    cursor = 0
    while True:
        cursor, members = client.zscan(index, cursor=cursor, match=pattern, count=batch_size)
        if members:
            yield [m for m, _ in members]
        if not cursor:
            return


def ratelimit_reset_matching(
    *,
    scope: str | None = None,
    tenant=None,
    actor,
    reason: str,
    dry_run: bool = False,
    batch_size: int = 500,
    tick=None,
) -> ResetReport:
    """Delete every limiter state of a scope and/or tenant (None: any) with SCAN, and its index entries; audited."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    client = get_redis()
    tick = tick or (lambda: None)
    label = None if tenant is None else tenant_label(tenant)
    scope_glob, label_glob = scope or "*", "*" if label is None else _glob_escape(label)
    report = ResetReport()
    complete = False
    try:
        # State keys themselves, indexed or not: an index entry can be missing, the key cannot hide from SCAN.
        for names in _scan_batches(client, state_pattern(scope_glob, label_glob), batch_size):
            if names:
                report.state_keys += client.exists(*names) if dry_run else client.delete(*names)
            tick()
        # A tenant's identities have one index; any other filter reads every slot's, found with SCAN too.
        if label not in (None, "-"):
            indexes = [tenant_index_key(label)]
        else:
            indexes = [name.decode() for batch in _scan_batches(client, index_pattern(), batch_size) for name in batch]
        pattern = f"{scope_glob}:{label_glob}:*"
        for index in indexes:
            for members in _zscan_batches(client, index, pattern, batch_size):
                report.index_entries += len(members) if dry_run else client.zrem(index, *members)
                tick()
        complete = True
    finally:
        if not dry_run:
            audit_record(
                actor=actor,
                action=AuditAction.RATELIMIT_RESET_MATCHING,
                tenant=_tenant_row(tenant),
                object_type="ratelimit.pattern",
                object_id=f"{scope_glob}:{label or '*'}"[:64],
                after={"state_keys": report.state_keys, "index_entries": report.index_entries, "complete": complete},
                reason=reason,
            )
    return report
