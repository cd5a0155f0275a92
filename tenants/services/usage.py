"""Persist the per-tenant daily usage counters from Redis into UsageDaily."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import transaction

from resilience.connection import get_redis, key
from tenants.models import Tenant, UsageDaily


@dataclass
class FlushReport:
    keys: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    skipped: int = 0
    days: set = field(default_factory=set)


def _parse(raw_key: str, prefix: str) -> tuple[uuid.UUID, date] | None:
    try:
        tenant_id, day = raw_key[len(prefix) :].split(":")
        return uuid.UUID(tenant_id), datetime.strptime(day, "%Y%m%d").date()
    except ValueError:
        return None


def usage_scan_batches(batch_size: int = 500) -> Iterator[list[tuple[str, dict]]]:
    """Yield batches of (key, counters) from the usage key family, read with SCAN and pipelined HGETALL."""
    client = get_redis()
    batch = []
    for raw in client.scan_iter(match=key("usage", "*"), count=batch_size):
        batch.append(raw.decode() if isinstance(raw, bytes) else raw)
        if len(batch) >= batch_size:
            yield _read(client, batch)
            batch = []
    if batch:
        yield _read(client, batch)


def _read(client, keys: list[str]) -> list[tuple[str, dict]]:
    with client.pipeline(transaction=False) as pipe:
        for name in keys:
            pipe.hgetall(name)
        replies = pipe.execute()
    return [
        (name, {(m.decode() if isinstance(m, bytes) else m): int(c) for m, c in counters.items()})
        for name, counters in zip(keys, replies, strict=True)
    ]


@transaction.atomic
def usage_flush_batch(batch: list[tuple[str, dict]], *, report: FlushReport, dry_run: bool = False) -> None:
    """Write one batch of counters as absolute daily counts; never lowers a stored count."""
    prefix = key("usage", "")
    parsed = {}
    for name, counters in batch:
        report.keys += 1
        where = _parse(name, prefix)
        if where is None:
            report.skipped += 1
            continue
        for metric, count in counters.items():
            parsed[(where[0], where[1], metric[:32])] = count
    known = set(Tenant.objects.filter(pk__in={t for t, _, _ in parsed}).values_list("pk", flat=True))
    existing = {
        (row.tenant_id, row.day, row.metric): row.count
        for row in UsageDaily.objects.select_for_update().filter(tenant_id__in=known, day__in={d for _, d, _ in parsed})
    }
    rows = []
    for (tenant_id, day, metric), count in parsed.items():
        if tenant_id not in known:
            report.skipped += 1
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
