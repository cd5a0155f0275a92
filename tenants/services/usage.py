"""Persist the per-tenant daily usage counters from Redis into UsageDaily."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import transaction

from resilience.connection import get_redis
from tenants.keys import (
    USAGE_TTL_SECONDS,
    legacy_usage_parse,
    usage_key,
    usage_legacy_key,
    usage_parse,
    usage_pattern,
)
from tenants.models import Tenant, UsageDaily


@dataclass
class FlushReport:
    keys: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    skipped: int = 0
    days: set = field(default_factory=set)


def _parse(name: str) -> tuple[uuid.UUID, date] | None:
    where = usage_parse(name) or legacy_usage_parse(name)
    if where is None:
        return None
    try:
        return uuid.UUID(where[-2]), datetime.strptime(where[-1], "%Y%m%d").date()
    except ValueError:
        return None


def usage_scan_batches(batch_size: int = 500) -> Iterator[list[str]]:
    """Yield batches of usage key names, read with SCAN (the counters are read per batch)."""
    client = get_redis()
    batch = []
    for raw in client.scan_iter(match=usage_pattern(), count=batch_size):
        batch.append(raw.decode() if isinstance(raw, bytes) else raw)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _read(client, days: list[tuple[uuid.UUID, str, date]]) -> list[dict]:
    """Return each (tenant id, slug, day)'s counters: its key plus any key named before hash tags."""
    with client.pipeline(transaction=False) as pipe:
        for tenant_id, slug, day in days:
            stamp = day.strftime("%Y%m%d")
            pipe.hgetall(usage_key(slug, tenant_id, stamp))
            pipe.hgetall(usage_legacy_key(tenant_id, stamp))
        replies = pipe.execute()
    totals = []
    for current, legacy in zip(replies[::2], replies[1::2], strict=True):
        counters: dict = {}
        for metric, count in [*current.items(), *legacy.items()]:
            metric = metric.decode() if isinstance(metric, bytes) else metric
            counters[metric] = counters.get(metric, 0) + int(count)
        totals.append(counters)
    return totals


@transaction.atomic
def usage_flush_batch(batch: list[str], *, report: FlushReport, dry_run: bool = False) -> None:
    """Write one batch of usage keys' counters as absolute daily counts; never lowers a stored count."""
    wanted = set()
    for name in batch:
        report.keys += 1
        where = _parse(name)
        if where is None:
            report.skipped += 1
            continue
        wanted.add(where)
    slugs = dict(Tenant.objects.filter(pk__in={t for t, _ in wanted}).values_list("pk", "slug"))
    report.skipped += sum(1 for t, _ in wanted if t not in slugs)
    days = sorted((t, slugs[t], d) for t, d in wanted if t in slugs)
    parsed = {}
    for (tenant_id, _slug, day), counters in zip(days, _read(get_redis(), days), strict=True):
        for metric, count in counters.items():
            parsed[(tenant_id, day, metric[:32])] = count
    known = set(slugs)
    existing = {
        (row.tenant_id, row.day, row.metric): row.count
        for row in UsageDaily.objects.select_for_update().filter(tenant_id__in=known, day__in={d for _, d, _ in parsed})
    }
    rows = []
    for (tenant_id, day, metric), count in parsed.items():
        if tenant_id not in known:
            continue
        # Counters are absolute per day and only grow; a lower value means Redis lost data: keep ours.
        if existing.get((tenant_id, day, metric), -1) >= count:
            report.rows_unchanged += 1
            continue
        report.days.add(day)
        rows.append(UsageDaily(tenant_id=tenant_id, day=day, metric=metric, count=count))
    report.rows_written += len(rows)
    if rows and not dry_run:
        UsageDaily.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["tenant", "day", "metric"], update_fields=["count"]
        )


def usage_adopt_legacy(client, *, slug: str, tenant_id: object, day: str) -> int:
    """Move a day's counts still under the usage name from before hash tags into the tenant's slot.

    The daily quota reads the tenant's hash, so the day of an upgrade keeps counting from
    what was served before it. Return how many metrics moved (0: nothing to adopt).
    """
    legacy = usage_legacy_key(tenant_id, day)
    with client.pipeline(transaction=True) as pipe:
        # Read and delete in one transaction: exactly one process adopts the counts.
        pipe.hgetall(legacy)
        pipe.delete(legacy)
        counters, claimed = pipe.execute()
    if not claimed or not counters:
        return 0
    current = usage_key(slug, tenant_id, day)
    with client.pipeline(transaction=True) as pipe:
        for metric, count in counters.items():
            pipe.hincrby(current, metric, int(count))
        pipe.expire(current, USAGE_TTL_SECONDS)
        pipe.execute()
    return len(counters)
