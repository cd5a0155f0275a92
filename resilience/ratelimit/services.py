"""Writes on the limiter's state: resets, audited."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from resilience.connection import get_redis, key
from resilience.ratelimit.limiter import SCOPES, index_all_key, index_tenant_key, state_key, tenant_label
from resilience.ratelimit.selectors import _glob_escape
from tenants.models import Tenant


def _tenant_row(tenant) -> Tenant | None:
    return tenant if isinstance(tenant, Tenant) else None


def ratelimit_reset_identity(*, scope: str, tenant, identity: str, actor, reason: str, ip=None) -> bool:
    """Give one identity its full allowance back; return True if it had state."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    label, identity = tenant_label(tenant), str(identity)
    key = state_key(scope, label, identity)
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
        pipe.zrem(index_all_key(), f"{scope}:{label}:{identity}")
        pipe.zrem(index_tenant_key(label), f"{scope}:{identity}")
        deleted = pipe.execute()[0]
    return bool(deleted)


def ratelimit_reset_tenant(*, tenant, actor, reason: str, ip=None) -> int:
    """Give every identity of a tenant its full allowance back; return how many had state."""
    label = tenant_label(tenant)
    client = get_redis()
    index = index_tenant_key(label)
    with transaction.atomic():
        reset = 0
        cursor = 0
        while True:
            cursor, members = client.zscan(index, cursor=cursor, count=500)
            if members:
                names = [m.decode() if isinstance(m, bytes) else m for m, _ in members]
                pipe = client.pipeline(transaction=False)
                for name in names:
                    scope, identity = name.split(":", 1)
                    pipe.delete(state_key(scope, label, identity))
                pipe.zrem(index_all_key(), *[f"{n.split(':', 1)[0]}:{label}:{n.split(':', 1)[1]}" for n in names])
                reset += sum(pipe.execute()[:-1])
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
    index_prefix = key("rl", "idx") + ":"
    report = ResetReport()
    complete = False
    try:
        # State keys themselves, indexed or not: an index entry can be missing, the key cannot hide from SCAN.
        for names in _scan_batches(client, key("rl", scope_glob, label_glob, "*"), batch_size):
            names = [n for n in names if not n.decode().startswith(index_prefix)]
            if names:
                report.state_keys += client.exists(*names) if dry_run else client.delete(*names)
            tick()
        indexes = [(index_all_key(), f"{scope_glob}:{label_glob}:*")]
        if label is not None:
            indexes.append((index_tenant_key(label), f"{scope_glob}:*"))
        else:
            tenant_indexes = _scan_batches(client, index_tenant_key("*"), batch_size)
            indexes += [(name.decode(), f"{scope_glob}:*") for batch in tenant_indexes for name in batch]
        for index, pattern in indexes:
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
