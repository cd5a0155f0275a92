"""Purge the tenants' Redis caches (evaluated flags, API-key lookups), audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from resilience.connection import get_redis, key
from tenants.cache import apikey_key, versions_bump
from tenants.models import ApiKey, Tenant

BATCH = 500


@dataclass
class CachePurgeReport:
    """What a purge did (or, in a dry run, would do)."""

    tenants: int = 0
    flag_documents: int = 0
    apikey_entries: int = 0


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _flag_documents(client, pattern: str) -> Iterable[list[bytes]]:
    """Yield batches of flag-cache document keys matching `pattern` (never the published-version keys)."""
    cursor = 0
    while True:
        cursor, names = client.scan(cursor=cursor, match=pattern, count=BATCH)
        docs = [n for n in names if not n.endswith(b":ver")]
        yield from _chunks(docs, BATCH)
        if not cursor:
            return


def tenant_cache_purge(
    *, tenants: list[Tenant] | None, actor, reason: str = "", dry_run: bool = False, ip: str | None = None, tick=None
) -> CachePurgeReport:
    """Bump the cache version of `tenants` (None: every tenant) and drop their flag and API-key cache entries."""
    client = get_redis()
    tick = tick or (lambda: None)
    report = CachePurgeReport()
    every = tenants is None
    ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True)) if every else [t.pk for t in tenants]
    report.tenants = len(ids)
    # Documents first, then the bump: one rebuilt in between is at the old version, which the publish deletes.
    patterns = [key("flags", "*")] if every else [key("flags", pk, "*") for pk in ids]
    for pattern in patterns:
        for docs in _flag_documents(client, pattern):
            report.flag_documents += len(docs) if dry_run else client.delete(*docs)
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
        hashes = list(ApiKey.objects.filter(tenant_id__in=batch).values_list("secret_hash", flat=True))
        for chunk in _chunks(hashes, BATCH):
            names = [apikey_key(h) for h in chunk]
            report.apikey_entries += client.exists(*names) if dry_run else client.delete(*names)
        tick()
    return report
