"""Purge the tenants' Redis caches (evaluated flags, API-key lookups), audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from resilience.connection import get_redis
from tenants.cache import versions_bump
from tenants.keys import apikey_key, document_pattern, legacy_patterns, route_key
from tenants.models import ApiKey, Tenant

BATCH = 500


@dataclass
class CachePurgeReport:
    """What a purge did (or, in a dry run, would do)."""

    tenants: int = 0
    flag_documents: int = 0
    apikey_entries: int = 0
    legacy_keys: int = 0  # keys named before hash tags (--all only)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _scan(client, pattern: str) -> Iterable[list[bytes]]:
    """Yield batches of key names matching `pattern` (SCAN, never KEYS)."""
    cursor = 0
    while True:
        cursor, names = client.scan(cursor=cursor, match=pattern, count=BATCH)
        yield from _chunks(names, BATCH)
        if not cursor:
            return


def _delete(client, names: list, dry_run: bool) -> int:
    # One key per command: on Redis Cluster each may live in its own slot.
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            (pipe.exists if dry_run else pipe.delete)(name)
        return sum(pipe.execute())


def tenant_cache_purge(
    *, tenants: list[Tenant] | None, actor, reason: str = "", dry_run: bool = False, ip: str | None = None, tick=None
) -> CachePurgeReport:
    """Bump the cache version of `tenants` (None: every tenant) and drop their flag and API-key cache entries."""
    client = get_redis()
    tick = tick or (lambda: None)
    report = CachePurgeReport()
    every = tenants is None
    rows = Tenant.objects.order_by("pk") if tenants is None else Tenant.objects.filter(pk__in=[t.pk for t in tenants])
    slugs = dict(rows.values_list("pk", "slug"))
    ids = list(slugs)
    report.tenants = len(ids)
    # Documents first, then the bump: one rebuilt in between is at the old version, which the publish deletes.
    for pattern in [document_pattern()] if every else [document_pattern(s) for s in slugs.values()]:
        for docs in _scan(client, pattern):
            report.flag_documents += _delete(client, docs, dry_run)
            tick()
    # Keys named before hash tags are never read again (nothing serves from them): a full purge frees them.
    for pattern in legacy_patterns() if every else []:
        for names in _scan(client, pattern):
            report.legacy_keys += _delete(client, names, dry_run)
            tick()
    for batch in _chunks(ids, BATCH):
        if not dry_run:
            # One transaction per batch: the bump, its audit rows, and the publish on commit.
            with transaction.atomic():
                versions = versions_bump(batch)
                for tenant in Tenant.objects.filter(pk__in=batch):
                    audit_record(
                        actor=actor,
                        action=AuditAction.TENANT_CACHE_PURGE,
                        tenant=tenant,
                        obj=tenant,
                        after={"cache_version": versions[tenant.pk]},
                        reason=reason,
                        ip=ip,
                    )
        keys = ApiKey.objects.filter(tenant_id__in=batch).values_list("tenant_id", "secret_hash")
        for chunk in _chunks(list(keys), BATCH):
            report.apikey_entries += _delete(client, [apikey_key(slugs[t], h) for t, h in chunk], dry_run)
            _delete(client, [route_key(h) for _t, h in chunk], dry_run)
        tick()
    return report
