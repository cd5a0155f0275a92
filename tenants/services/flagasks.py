"""Fold the per-tenant daily asked-flags counters from Redis into FlagAskDaily, each ask exactly once.

The gateway counts, per tenant and UTC day, which flags served requests asked for (a hash
field per flag key, per list of keys, or `*` for every flag). Counters are absolute and only
grow, so each tenant-day keeps a checkpoint of the counts already added; a flush adds only
what grew since, in the same transaction as the checkpoint, and running twice adds nothing.

A flush also leaves a marker field in the hash (`#flushed`, the checkpoint's generation),
written to Redis before the checkpoint commits. A hash without it whose tenant-day has a
checkpoint was lost (Redis restarted without its data) and refilled since: its counts are
all new. A marker of another generation (a restored snapshot, or a flush whose commit
failed) falls back to adding only what passed the checkpoint: asks may be missed then,
never counted twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from resilience.connection import get_redis
from tenants.keys import USAGE_TTL_SECONDS, flag_asks_key, flag_asks_parse, flag_asks_pattern
from tenants.models import Flag, FlagAskCheckpoint, FlagAskDaily, Tenant

#: The hash field a flush marks a tenant-day's hash with (flag keys never contain '#').
MARKER = "#flushed"
# A flush renews a hash's expiry to USAGE_TTL_SECONDS after its day ends; its checkpoint lives a day longer.
CHECKPOINT_DAYS = USAGE_TTL_SECONDS // 86_400 + 2


@dataclass
class AsksFlushReport:
    keys: int = 0
    asks_added: int = 0
    rows_written: int = 0
    skipped: int = 0
    checkpoints_pruned: int = 0
    days: set = field(default_factory=set)


def flag_asks_scan_batches(batch_size: int = 500) -> Iterator[list[str]]:
    """Yield batches of asked-flags key names, read with SCAN."""
    batch = []
    for raw in get_redis().scan_iter(match=flag_asks_pattern(), count=batch_size):
        batch.append(raw.decode() if isinstance(raw, bytes) else raw)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse(name: str) -> tuple[uuid.UUID, date] | None:
    where = flag_asks_parse(name)
    if where is None:
        return None
    try:
        return uuid.UUID(where[1]), datetime.strptime(where[2], "%Y%m%d").date()
    except ValueError:
        return None


def flag_asks_per_key(fields: dict, known: set[str]) -> dict[str, int]:
    """Return flag key -> asks from one tenant-day's hash; `*` (every flag) counts 1: one tenant asked that day."""
    counts: dict[str, int] = {}
    for name, count in fields.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name == MARKER:
            continue
        if name == FlagAskDaily.ALL:
            counts[name] = 1
            continue
        for key in name.split(","):
            if key in known:
                counts[key] = counts.get(key, 0) + int(count)
    return counts


@transaction.atomic
def flag_asks_flush_batch(batch: list[str], *, report: AsksFlushReport, dry_run: bool = False) -> None:
    """Add what each tenant-day's counters grew by since its checkpoint to FlagAskDaily, and move the checkpoint."""
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
    days = sorted((t, d) for t, d in wanted if t in slugs)
    if not days:
        return
    client = get_redis()
    with client.pipeline(transaction=False) as pipe:
        for tenant_id, day in days:
            pipe.hgetall(flag_asks_key(slugs[tenant_id], tenant_id, day.strftime("%Y%m%d")))
        replies = pipe.execute()
    known = set(Flag.objects.values_list("key", flat=True))
    # Locked rows: a second flusher (the lock expired under a stalled run) waits, then sees our checkpoints.
    checkpoints = {
        (c.tenant_id, c.day): c
        for c in FlagAskCheckpoint.objects.select_for_update().filter(
            tenant_id__in={t for t, _ in days}, day__in={d for _, d in days}
        )
    }
    added: dict[tuple[str, date], int] = {}
    moved, marks = [], []
    for (tenant_id, day), fields in zip(days, replies, strict=True):
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        current = flag_asks_per_key(fields, known)
        checkpoint = checkpoints.get((tenant_id, day))
        seen = dict(checkpoint.counts) if checkpoint is not None else {}
        generation = seen.pop(MARKER, None)
        marker = fields.get(MARKER)
        marker = marker.decode() if isinstance(marker, bytes) else marker
        if checkpoint is not None and marker is None:
            seen = {}  # the hash was lost and refilled: everything in it is new
        grown = {key: count - seen.get(key, 0) for key, count in current.items() if count > seen.get(key, 0)}
        if not grown and marker is not None and marker == generation:
            continue
        for key, delta in grown.items():
            added[(key, day)] = added.get((key, day), 0) + delta
        token = secrets.token_hex(6)
        counts = {**seen, **{key: current[key] for key in grown}, MARKER: token}
        # Fresh instances (no pk) so one upsert on (tenant, day) writes new and existing checkpoints alike.
        moved.append(FlagAskCheckpoint(tenant_id=tenant_id, day=day, counts=counts))
        marks.append((flag_asks_key(slugs[tenant_id], tenant_id, day.strftime("%Y%m%d")), day, token))
        if grown:
            report.days.add(day)
    report.asks_added += sum(count for (key, _), count in added.items() if key != FlagAskDaily.ALL)
    report.rows_written += len(added)
    if dry_run or not moved:
        return
    # The markers go first: if the commit below fails, a marker of an uncommitted generation only
    # makes the next flush compare with the old checkpoint (no double count).
    with client.pipeline(transaction=False) as pipe:
        for name, day, token in marks:
            pipe.hset(name, MARKER, token)
            ends = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            pipe.expireat(name, ends + timedelta(seconds=USAGE_TTL_SECONDS))
        pipe.execute()
    totals = {
        (row.flag_key, row.day): row
        for row in FlagAskDaily.objects.select_for_update().filter(
            flag_key__in={k for k, _ in added}, day__in={d for _, d in added}
        )
    }
    rows = []
    for (key, day), delta in added.items():
        row = totals.get((key, day))
        rows.append(FlagAskDaily(flag_key=key, day=day, asks=(row.asks if row else 0) + delta))
    FlagAskDaily.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["flag_key", "day"], update_fields=["asks"]
    )
    FlagAskCheckpoint.objects.bulk_create(
        moved, update_conflicts=True, unique_fields=["tenant", "day"], update_fields=["counts"]
    )


def flag_asks_prune(*, report: AsksFlushReport, dry_run: bool = False) -> None:
    """Delete checkpoints whose Redis hash has expired (they can never grow again)."""
    old = FlagAskCheckpoint.objects.filter(day__lt=timezone.now().date() - timedelta(days=CHECKPOINT_DAYS))
    report.checkpoints_pruned = old.count() if dry_run else old.delete()[0]
