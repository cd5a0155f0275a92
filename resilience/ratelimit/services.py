"""Writes on the limiter's state: resets, audited."""

from __future__ import annotations

from django.db import transaction

from resilience.connection import get_redis
from resilience.ratelimit.limiter import SCOPES, index_all_key, index_tenant_key, state_key, tenant_label
from tenants.models import Tenant
from tenants.services.audit import audit_record


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
            action="ratelimit.reset_identity",
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
            action="ratelimit.reset_tenant",
            tenant=_tenant_row(tenant),
            object_type="ratelimit.tenant",
            object_id=label,
            after={"identities_reset": reset},
            reason=reason,
            ip=ip,
        )
    return reset
