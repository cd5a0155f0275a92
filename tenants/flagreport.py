"""Reads across every tenant for one flag (the per-flag page) and for every flag (the stale-flag report).

Both read the tenants' cached documents from Redis in pipelined batches (one HMGET of
`ver` and `rules` per tenant, `BATCH` tenants per round trip): what the API serves is what
the page shows. A tenant whose document is missing or of another version has only the
flags asked for compiled from the database, with a fixed number of queries per batch, and
is not cached (the API fills its cache itself). SQL stays bounded: a warm read costs the
same few queries for 10 tenants or 10,000.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, Max, OuterRef, Q, Sum
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants import flagrules
from tenants.keys import document_key
from tenants.models import PRODUCTION, Environment, Flag, FlagAskDaily, OwnerToggle, Plan, Segment, Tenant, TenantFlag
from tenants.selectors import flag_rule_compile, tenant_attributes

log = logging.getLogger(__name__)

#: Tenants read per Redis round trip.
BATCH = 500
#: Reasons that mean the same thing to a reader of the stale report.
REASON_CLASSES = {
    "archived": "archived",
    "owner_toggle": "override",
    "admin_override": "override",
    "rollout": "percentage",
    "split": "percentage",
    "rule": "rule",
    "plan": "default",
    "default": "default",
}
_TENANT_FIELDS = ("pk", "slug", "name", "status", "plan__code", "labels", "cache_version")


# -- reading many tenants' rules ----------------------------------------------------------------


def tenants_rules(tenants: list[dict], flags: list[Flag]) -> dict[Any, dict]:
    """Return tenant id -> {flag key: rule} for `flags` in production (see `environments_rules`)."""
    rules = environments_rules([{**tenant, "environment": PRODUCTION} for tenant in tenants], flags)
    return {pk: rule for (pk, _), rule in rules.items()}


def environments_rules(items: list[dict], flags: list[Flag]) -> dict[tuple[Any, str], dict]:
    """Return (tenant id, environment) -> {flag key: rule} for `flags`, from the cached documents, compiling the rest.

    `items` are dicts with at least `pk`, `slug`, `cache_version` and `environment`; one pipelined HMGET
    serves them all.
    """
    keys = {flag.key for flag in flags}
    found: dict[tuple[Any, str], dict] = {}
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for item in items:
                pipe.hmget(document_key(item["slug"], item["pk"], item["environment"]), ["ver", "rules"])
            replies = pipe.execute()
    except REDIS_UNAVAILABLE_ERRORS as exc:
        log.warning("flag report: Redis unavailable (%s); compiling from the database", exc)
        replies = [(None, None)] * len(items)
    for item, (version, raw) in zip(items, replies, strict=True):
        if raw is None or version is None or int(version) != item["cache_version"]:
            continue
        rules = json.loads(raw)
        if keys <= rules.keys():
            found[item["pk"], item["environment"]] = {key: rules[key] for key in keys}
    missing = [(item["pk"], item["environment"]) for item in items if (item["pk"], item["environment"]) not in found]
    if missing:
        found.update(_compile(missing, flags))
    return found


def _compile(pairs: list[tuple[Any, str]], flags: list[Flag]) -> dict[tuple[Any, str], dict]:
    """Compile `flags` for (tenant id, environment) pairs from the database: five queries, whatever their number."""
    tenant_ids = sorted({pk for pk, _ in pairs}, key=str)
    environments = sorted({environment for _, environment in pairs})
    tenants = {tenant.pk: tenant for tenant in Tenant.objects.select_related("plan").filter(pk__in=tenant_ids)}
    layers = {"tenant__in": tenant_ids, "flag__in": [flag.pk for flag in flags], "environment__in": environments}
    overrides = {(o.tenant_id, o.environment, o.flag_id): o for o in TenantFlag.objects.filter(**layers)}
    owners = {(o.tenant_id, o.environment, o.flag_id): o for o in OwnerToggle.objects.filter(**layers)}
    segments, changed = {}, {}
    for key, conditions, updated_at in Segment.objects.values_list("key", "conditions", "updated_at"):
        segments[key], changed[key] = conditions, updated_at
    compiled = {}
    attributes = {pk: tenant_attributes(tenant) for pk, tenant in tenants.items()}
    for pk, environment in pairs:
        tenant = tenants.get(pk)
        if tenant is None:
            continue
        compiled[pk, environment] = {
            flag.key: flag_rule_compile(
                flag,
                tenant=tenant,
                attributes=attributes[pk],
                override=overrides.get((pk, environment, flag.pk)),
                owner=owners.get((pk, environment, flag.pk)),
                segments=segments,
                segments_changed=changed,
            )
            for flag in flags
        }
    return compiled


def _batches(items: Iterable, size: int = BATCH) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- the per-flag page --------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagTenantFilters:
    """The per-flag page's filters; empty values filter nothing."""

    reason: str = ""
    value: str = ""  # a variant key, or the value as JSON (`true`, `"blue"`, `3`) or as text
    plan: str = ""
    status: str = ""
    label: str = ""
    has_override: bool | None = None
    has_owner_toggle: bool | None = None
    environment: str = ""  # one environment's rows; empty: every environment of each tenant

    @property
    def needs_answers(self) -> bool:
        return bool(self.reason or self.value)


@dataclass
class FlagTenantRow:
    """One tenant's answer for a flag in one environment, and the layers behind it."""

    tenant_id: Any
    slug: str
    name: str
    status: str
    plan: str
    labels: list
    environment: str = PRODUCTION
    enabled: bool = False
    value: Any = None
    variant: str | None = None
    reason: str = ""
    rule: int | None = None
    segment: str | None = None
    override: dict | None = None
    owner_toggle: dict | None = None

    @property
    def value_json(self) -> str:
        return json.dumps(self.value, sort_keys=True)


def _override_summary(row: TenantFlag) -> dict:
    return {
        "enabled": row.enabled,
        "rollout_percent": row.rollout_percent,
        "variant": row.variant or None,
        "value": row.value,
        "owner_variants": list(row.owner_variants or ()),
    }


def environment_keys() -> list[str]:
    """Return every environment key some tenant has, production first (the per-flag page's filter)."""
    others = Environment.objects.order_by("key").values_list("key", flat=True).distinct()
    return [PRODUCTION, *others]


class FlagTenants:
    """Every tenant's answer for one flag in each of its environments, filtered; answered a batch at a time.

    Filters on the tenant and its layers run in SQL, so a page without an answer filter is a
    COUNT and a LIMIT of tenants, and only that page's tenants are answered, one row per tenant
    and environment (their environments read in one query). A reason or value filter needs every
    candidate answered: in batches, with the flag's overrides and owner toggles read once.
    """

    def __init__(self, flag: Flag, filters: FlagTenantFilters) -> None:
        self.flag = flag
        self.filters = filters
        self._layers: tuple[dict, dict] | None = None
        self._answered: list[FlagTenantRow] | None = None

    def _layer_rows(self, model, **where):
        rows = model.objects.filter(flag=self.flag, **where)
        return rows.filter(environment=self.filters.environment) if self.filters.environment else rows

    def _tenants(self):
        filters = self.filters
        tenants = Tenant.objects.order_by("slug")
        if filters.status:
            tenants = tenants.filter(status=filters.status)
        else:
            tenants = tenants.exclude(status=Tenant.Status.DELETED)
        if filters.plan:
            tenants = tenants.filter(plan__code=filters.plan)
        if filters.label and connection.vendor == "postgresql":
            tenants = tenants.filter(labels__contains=[filters.label])
        if filters.environment and filters.environment != PRODUCTION:
            tenants = tenants.filter(Exists(Environment.objects.filter(tenant=OuterRef("pk"), key=filters.environment)))
        for model, wanted in ((TenantFlag, filters.has_override), (OwnerToggle, filters.has_owner_toggle)):
            # "Has one" keeps tenants with the layer in some environment (each row is checked in its own);
            # "has none" is exact in SQL only for one environment: across all, a tenant with the layer in
            # staging still has a production row without it.
            if wanted or (wanted is False and filters.environment):
                exists = Exists(self._layer_rows(model, tenant=OuterRef("pk")))
                tenants = tenants.filter(exists if wanted else ~exists)
        return tenants.values(*_TENANT_FIELDS)

    def _label_in_python(self) -> bool:
        # Other databases cannot test JSON containment in SQL: the label filter runs here.
        return bool(self.filters.label) and connection.vendor != "postgresql"

    def _candidates(self) -> Iterator[dict]:
        for tenant in self._tenants().iterator(chunk_size=2000):
            if not self._label_in_python() or self.filters.label in (tenant["labels"] or ()):
                yield tenant

    def _expand(self, tenants: list[dict]) -> list[dict]:
        """Return one item per tenant and environment (the filter's, or production and each of the tenant's)."""
        if self.filters.environment:
            return [{**tenant, "environment": self.filters.environment} for tenant in tenants]
        others: dict[Any, list[str]] = {}
        rows = Environment.objects.filter(tenant__in=[tenant["pk"] for tenant in tenants]).order_by("key")
        for tenant_id, key in rows.values_list("tenant_id", "key"):
            others.setdefault(tenant_id, []).append(key)
        return [
            {**tenant, "environment": environment}
            for tenant in tenants
            for environment in (PRODUCTION, *others.get(tenant["pk"], ()))
        ]

    def _layers_of(self, tenant_ids: list) -> tuple[dict, dict]:
        """Return (overrides, owner toggles) by (tenant id, environment): the whole flag's once loaded, else these."""
        if self._layers is not None:
            return self._layers
        return (
            {(o.tenant_id, o.environment): o for o in self._layer_rows(TenantFlag, tenant__in=tenant_ids)},
            {(o.tenant_id, o.environment): o for o in self._layer_rows(OwnerToggle, tenant__in=tenant_ids)},
        )

    def _load_layers(self) -> None:
        if self._layers is None:
            self._layers = (
                {(o.tenant_id, o.environment): o for o in self._layer_rows(TenantFlag)},
                {(o.tenant_id, o.environment): o for o in self._layer_rows(OwnerToggle)},
            )

    def answer(self, tenants: list[dict]) -> list[FlagTenantRow]:
        """Return the rows of `tenants` (dicts of tenant fields) in each environment, answered for the tenant itself.

        Rows whose layers the override and owner-toggle filters exclude are left out.
        """
        if not tenants:
            return []
        items = self._expand(tenants)
        rules = environments_rules(items, [self.flag])
        overrides, owners = self._layers_of([tenant["pk"] for tenant in tenants])
        rows = []
        for item in items:
            where = (item["pk"], item["environment"])
            override, owner = overrides.get(where), owners.get(where)
            if not self._layers_match(override, owner):
                continue
            rule = rules[where][self.flag.key]
            result = flagrules.evaluate(self.flag.key, rule["entry"], str(item["pk"]))
            step: dict = next((s for s in rule["entry"].get("steps", ()) if s.get("rule") == result.rule), {})
            rows.append(
                FlagTenantRow(
                    tenant_id=item["pk"],
                    slug=item["slug"],
                    name=item["name"],
                    status=item["status"],
                    plan=item["plan__code"],
                    labels=list(item["labels"] or ()),
                    environment=item["environment"],
                    enabled=result.enabled,
                    value=result.value,
                    variant=result.variant,
                    reason=result.reason,
                    rule=result.rule,
                    segment=step.get("segment") if result.rule is not None else None,
                    override=None if override is None else _override_summary(override),
                    owner_toggle=None
                    if owner is None
                    else {"enabled": owner.enabled, "variant": owner.variant or None},
                )
            )
        return rows

    def _layers_match(self, override, owner) -> bool:
        # SQL kept the tenants with such a layer in some environment; each row must have it in its own.
        filters = self.filters
        if filters.has_override is not None and (override is not None) != filters.has_override:
            return False
        return filters.has_owner_toggle is None or (owner is not None) == filters.has_owner_toggle

    def _matches(self, row: FlagTenantRow) -> bool:
        filters = self.filters
        if filters.reason and row.reason != filters.reason:
            return False
        if filters.value:
            wanted = filters.value.strip()
            as_text = row.value if isinstance(row.value, str) else row.value_json
            if wanted not in (row.variant, row.value_json, as_text):
                return False
        return True

    def rows(self):
        """Return what a paginator pages: the tenants' query, candidate dicts, or answered rows (answer filters)."""
        if not self.filters.needs_answers:
            return list(self._candidates()) if self._label_in_python() else self._tenants()
        if self._answered is None:
            self._load_layers()
            self._answered = [
                row for batch in _batches(self._candidates()) for row in self.answer(batch) if self._matches(row)
            ]
        return self._answered

    def page_rows(self, items) -> list[FlagTenantRow]:
        """Return a page of `rows()` answered, one row per tenant and environment."""
        items = list(items)
        if items and isinstance(items[0], FlagTenantRow):
            return items
        return self.answer(items)

    def iter_all(self) -> Iterator[FlagTenantRow]:
        """Yield every filtered row, answered a batch at a time (the CSV export)."""
        if self.filters.needs_answers:
            yield from self.rows()
            return
        self._load_layers()
        for batch in _batches(self._candidates()):
            yield from self.answer(batch)


# -- the stale-flag report ----------------------------------------------------------------------


@dataclass
class FlagStaleness:
    """What the stale-flag report says about one flag over the last `days` days."""

    key: str
    kind: str
    tenants: int = 0
    #: Every tenant's answer (for the tenant itself) was the same value and reason class, by no subject.
    uniform: bool = True
    answer: dict | None = None
    varied_by: str = ""
    last_change: datetime | None = None
    asks: int = 0  # requests that asked for this flag by key
    asked_all: int = 0  # tenant-days that asked for every flag (bootstrap, evaluate without keys)
    stale_because: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.stale_because)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "tenants": self.tenants,
            "uniform": self.uniform,
            "answer": self.answer,
            "varied_by": self.varied_by,
            "last_change": self.last_change.isoformat() if self.last_change else None,
            "asks": self.asks,
            "asked_all": self.asked_all,
            "stale_because": self.stale_because,
        }


@dataclass
class StaleReport:
    days: int
    since: datetime
    counted_since: date | None
    flags: list[FlagStaleness]

    @property
    def stale(self) -> list[FlagStaleness]:
        return [flag for flag in self.flags if flag.stale]


def _subject_dependent(entry: dict, result: flagrules.Evaluation) -> bool:
    """Return True if other subjects or contexts of the tenant could get another answer."""
    if result.reason in ("rollout", "split"):
        return True
    return any(step.get("match") or int(step.get("percent", 100)) < 100 for step in entry.get("steps", ()))


def _last_changes(flags: list[Flag], since: datetime) -> dict[str, datetime]:
    """Return flag key -> its latest change among the flag, its overrides, owner toggles, segments and plans."""
    last = {flag.key: flag.updated_at for flag in flags}
    by_id = {flag.pk: flag.key for flag in flags}

    def bump(key: str, moment: datetime | None) -> None:
        if key in last and moment is not None and moment > last[key]:
            last[key] = moment

    for model in (TenantFlag, OwnerToggle):
        for flag_id, moment in model.objects.values_list("flag_id").annotate(latest=Max("updated_at")):
            bump(by_id.get(flag_id, ""), moment)
    segment_changed, segment_keys = {}, {}
    for pk, key, moment in Segment.objects.values_list("pk", "key", "updated_at"):
        segment_changed[key], segment_keys[str(pk)] = moment, key
    for flag in flags:
        for rule in flag.rules or ():
            bump(flag.key, segment_changed.get(rule.get("segment")))
    for defaults, moment in Plan.objects.values_list("default_flags", "updated_at"):
        for key in defaults if isinstance(defaults, dict) else ():
            bump(key, moment)
    # The audit trail also remembers deletions (an override cleared, a segment removed).
    events = (
        AuditEvent.objects.filter(created_at__gte=since)
        .filter(
            Q(object_type="tenants.flag", object_id__in=[str(pk) for pk in by_id])
            | Q(object_type__in=("tenants.tenantflag", "tenants.ownertoggle"), object_id__in=list(last))
            | Q(object_type="tenants.segment")
        )
        .values_list("object_type", "object_id")
        .annotate(latest=Max("created_at"))
    )
    # A promotion or an environment's deletion removes layers in one event about the environment.
    layer_events = AuditEvent.objects.filter(
        created_at__gte=since, action__in=(AuditAction.ENVIRONMENT_PROMOTE, AuditAction.ENVIRONMENT_DELETE)
    ).values_list("action", "before", "after", "created_at")
    for action, before, after, moment in layer_events:
        if action == AuditAction.ENVIRONMENT_PROMOTE:
            # Keyed "<layer>.<flag>"; a layer's name has no dot and a flag key may.
            named = {name.partition(".")[2] for name in {**(before or {}), **(after or {})}}
        else:
            named = {*(before or {}).get("overrides", ()), *(before or {}).get("owner_toggles", ())}
        for key in named:
            bump(key, moment)
    for object_type, object_id, moment in events:
        if object_type == "tenants.flag":
            bump(str(by_id.get(int(object_id), "")) if object_id.isdigit() else "", moment)
        elif object_type == "tenants.segment":
            segment = segment_keys.get(object_id)
            for flag in flags:
                if segment is None or any(rule.get("segment") == segment for rule in flag.rules or ()):
                    bump(flag.key, moment)  # a deleted segment: every flag might have used it
        else:
            bump(object_id, moment)
    return last


def flags_staleness(days: int, *, now: datetime | None = None, batch_size: int = BATCH) -> StaleReport:
    """Return every live flag's staleness over the last `days` days (the report lists the stale ones)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    flags = list(Flag.objects.filter(archived=False).order_by("key"))
    report = {flag.key: FlagStaleness(key=flag.key, kind=flag.kind) for flag in flags}
    signatures: dict[str, tuple] = {}
    tenants = Tenant.objects.exclude(status=Tenant.Status.DELETED).order_by("pk").values(*_TENANT_FIELDS)
    # Every environment's answers count: a flag that differs only in staging is not uniform. One query
    # up front (not one per batch), so warm documents keep the report's SQL independent of the tenants.
    others: dict[Any, list[str]] = {}
    for tenant_id, key in Environment.objects.order_by("key").values_list("tenant_id", "key"):
        others.setdefault(tenant_id, []).append(key)
    for batch in _batches(tenants.iterator(chunk_size=2000), batch_size):
        live = [flag for flag in flags if report[flag.key].uniform]
        if not live:
            break
        items = [
            {**tenant, "environment": environment}
            for tenant in batch
            for environment in (PRODUCTION, *others.get(tenant["pk"], ()))
        ]
        rules = environments_rules(items, live)
        for flag in live:
            staleness = report[flag.key]
            for item in items:
                if item["environment"] == PRODUCTION:
                    staleness.tenants += 1
                where = (
                    item["slug"] if item["environment"] == PRODUCTION else f"{item['slug']} in {item['environment']}"
                )
                entry = rules[item["pk"], item["environment"]][flag.key]["entry"]
                result = flagrules.evaluate(flag.key, entry, str(item["pk"]))
                if _subject_dependent(entry, result):
                    staleness.uniform, staleness.varied_by = False, f"subject ({where}: {result.reason})"
                    break
                signature = (
                    result.enabled,
                    json.dumps(result.value, sort_keys=True),
                    result.variant,
                    REASON_CLASSES.get(result.reason, result.reason),
                )
                first = signatures.setdefault(flag.key, signature)
                if signature != first:
                    staleness.uniform, staleness.varied_by = False, f"tenant ({where})"
                    break
    for key, signature in signatures.items():
        if report[key].uniform:
            enabled, value, variant, reason_class = signature
            report[key].answer = {
                "enabled": enabled,
                "value": json.loads(value),
                "variant": variant,
                "reason": reason_class,
            }
    for key, moment in _last_changes(flags, since).items():
        report[key].last_change = moment
    asked = dict(FlagAskDaily.objects.filter(day__gte=since.date()).values_list("flag_key").annotate(total=Sum("asks")))
    asked_all = asked.get(FlagAskDaily.ALL, 0)
    for staleness in report.values():
        staleness.asks, staleness.asked_all = asked.get(staleness.key, 0), asked_all
        if staleness.uniform and (staleness.last_change is None or staleness.last_change < since):
            staleness.stale_because.append("uniform")
        if not staleness.asks and not staleness.asked_all:
            staleness.stale_because.append("unasked")
    counted_since = FlagAskDaily.objects.order_by("day").values_list("day", flat=True).first()
    return StaleReport(days=days, since=since, counted_since=counted_since, flags=list(report.values()))
