"""The stale-flag report and the batched read of many tenants' cached rules behind it and the per-flag page."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from tenants.flagreport import flags_staleness, tenants_rules
from tenants.models import Flag, FlagAskDaily, Segment, Tenant, TenantFlag
from tenants.selectors import tenant_rules
from tenants.services.environments import (
    environment_create,
    environment_delete,
    environment_diff,
    environment_promote,
)
from tenants.services.flags import flag_set_override, segment_create, segment_update
from tenants.services.tenants import tenant_update

from .factories import make_flag, make_plan, make_staff, make_tenant

pytestmark = pytest.mark.django_db

DAYS = 30


def age(*flags: Flag, days: int = DAYS + 5) -> None:
    """Make the flags, and every audit event so far, look `days` old."""
    long_ago = timezone.now() - timedelta(days=days)
    Flag.objects.filter(pk__in=[f.pk for f in flags]).update(updated_at=long_ago)
    AuditEvent.objects.update(created_at=long_ago)


def warm(*tenants) -> None:
    for tenant in tenants:
        tenant.refresh_from_db()
        tenant_rules(tenant)


def rows(tenants) -> list[dict]:
    return list(Tenant.objects.filter(pk__in=[t.pk for t in tenants]).values("pk", "slug", "cache_version"))


def by_key(report) -> dict:
    return {flag.key: flag for flag in report.flags}


def test_tenants_rules_reads_warm_documents_without_sql_and_compiles_the_rest(redis_client):
    flag = make_flag("beta", default=True)
    plan = make_plan()
    warm_ones = [make_tenant(plan=plan) for _ in range(3)]
    cold = make_tenant(plan=plan)
    warm(*warm_ones)
    warm_rows, all_rows = rows(warm_ones), rows([*warm_ones, cold])
    with CaptureQueriesContext(connection) as read:
        rules = tenants_rules(warm_rows, [flag])
    assert read.captured_queries == []
    assert {r["beta"]["entry"]["steps"][0]["reason"] for r in rules.values()} == {"default"}
    with CaptureQueriesContext(connection) as mixed:
        rules = tenants_rules(all_rows, [flag])
    assert set(rules) == {t.pk for t in [*warm_ones, cold]}
    assert len(mixed.captured_queries) <= 5  # the cold tenant's layers, whatever their number
    tenant_update(tenant=cold, actor=None, name="Renamed")  # a newer version: the cached copy is not trusted
    warm_copy = rows([cold])
    assert tenants_rules(warm_copy, [flag])[cold.pk]["beta"]["entry"]["steps"][0]["serve"] == {"enabled": True}


def test_a_flag_with_one_answer_everywhere_and_no_recent_change_is_stale(redis_client):
    uniform = make_flag("uniform", default=True)
    make_tenant("acme"), make_tenant("globex")
    age(uniform)
    report = by_key(flags_staleness(DAYS))
    assert report["uniform"].uniform and report["uniform"].tenants == 2
    assert report["uniform"].answer == {"enabled": True, "value": True, "variant": None, "reason": "default"}
    assert report["uniform"].stale_because == ["uniform", "unasked"]


def test_a_recent_change_keeps_a_uniform_flag_off_the_report(redis_client):
    recent = make_flag("recent", default=True)
    acme = make_tenant("acme")
    age(recent)
    flag_set_override(tenant=acme, flag=recent, enabled=True, actor=None)  # same answer, but a change
    staleness = by_key(flags_staleness(DAYS))["recent"]
    assert staleness.last_change > timezone.now() - timedelta(days=1)
    assert "uniform" not in staleness.stale_because


def test_a_change_to_a_segment_a_rule_uses_counts_as_a_change(redis_client):
    segment = segment_create(
        key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None
    )
    make_flag("targeted", rules=[{"segment": "eu", "serve": {"enabled": True}}])
    make_tenant("acme")
    make_flag("other")
    age(*Flag.objects.all())
    Segment.objects.update(updated_at=timezone.now() - timedelta(days=DAYS + 5))
    assert "uniform" in by_key(flags_staleness(DAYS))["targeted"].stale_because
    segment_update(segment=segment, actor=None, description="EU tenants")
    report = by_key(flags_staleness(DAYS))
    assert "uniform" not in report["targeted"].stale_because
    assert "uniform" in report["other"].stale_because  # a flag that does not use the segment is not touched


def test_an_answer_that_differs_between_tenants_is_not_uniform(redis_client):
    split = make_flag("split")
    acme, _globex = make_tenant("acme"), make_tenant("globex")
    flag_set_override(tenant=acme, flag=split, enabled=True, actor=None)
    age(split)
    staleness = by_key(flags_staleness(DAYS))["split"]
    assert not staleness.uniform and staleness.varied_by.startswith("tenant")
    assert staleness.stale_because == ["unasked"]


def test_an_answer_that_differs_only_in_another_environment_is_not_uniform(redis_client):
    staged = make_flag("staged")
    acme, _globex = make_tenant("acme"), make_tenant("globex")
    environment_create(tenant=acme, key="staging", actor=None)
    flag_set_override(tenant=acme, flag=staged, enabled=True, actor=None, environment="staging")
    age(staged)
    staleness = by_key(flags_staleness(DAYS))["staged"]
    assert not staleness.uniform and staleness.varied_by == "tenant (acme in staging)"
    # Tenants are counted once, whatever their environments.
    assert by_key(flags_staleness(DAYS))["staged"].tenants <= 2


def test_a_layer_removed_by_a_promotion_or_an_environment_delete_counts_as_a_change(redis_client):
    promoted, dropped, other = make_flag("promoted"), make_flag("dropped"), make_flag("other")
    acme = make_tenant("acme")
    environment_create(tenant=acme, key="staging", actor=None)
    environment_create(tenant=acme, key="qa", actor=None)
    flag_set_override(tenant=acme, flag=promoted, enabled=False, actor=None)
    flag_set_override(tenant=acme, flag=dropped, enabled=False, actor=None, environment="qa")
    age(promoted, dropped, other)
    TenantFlag.objects.update(updated_at=timezone.now() - timedelta(days=DAYS + 5))
    diff = environment_diff(tenant=acme, source="staging", target="production")
    environment_promote(tenant=acme, source="staging", target="production", digest=diff.digest, actor=None)
    environment_delete(tenant=acme, key="qa", actor=None)
    report = by_key(flags_staleness(DAYS))
    assert report["promoted"].stale_because == ["unasked"] and report["dropped"].stale_because == ["unasked"]
    assert report["other"].stale_because == ["uniform", "unasked"]


def test_a_percentage_is_not_uniform_even_if_every_tenant_lands_alike(redis_client):
    rollout = make_flag("rollout")
    acme = make_tenant("acme")
    flag_set_override(tenant=acme, flag=rollout, enabled=True, rollout_percent=50, actor=None)
    age(rollout)
    staleness = by_key(flags_staleness(DAYS))["rollout"]
    assert not staleness.uniform and staleness.varied_by.startswith("subject")


def test_asks_come_from_the_daily_totals(redis_client):
    asked, silent = make_flag("asked"), make_flag("silent")
    make_tenant("acme")
    age(asked, silent)
    today = timezone.now().date()
    FlagAskDaily.objects.create(flag_key="asked", day=today - timedelta(days=2), asks=4)
    FlagAskDaily.objects.create(flag_key="silent", day=today - timedelta(days=DAYS + 3), asks=9)  # too old
    report = flags_staleness(DAYS)
    flags = by_key(report)
    assert (flags["asked"].asks, flags["asked"].stale_because) == (4, ["uniform"])
    assert (flags["silent"].asks, flags["silent"].stale_because) == (0, ["uniform", "unasked"])
    assert report.counted_since == today - timedelta(days=DAYS + 3)
    FlagAskDaily.objects.create(flag_key=FlagAskDaily.ALL, day=today, asks=1)  # a bootstrap asked for all
    assert by_key(flags_staleness(DAYS))["silent"].stale_because == ["uniform"]


def test_archived_flags_are_left_out(redis_client):
    make_flag("old")
    Flag.objects.filter(key="old").update(archived=True)
    make_tenant("acme")
    assert "old" not in by_key(flags_staleness(DAYS))


def test_the_report_costs_the_same_sql_for_few_or_many_warm_tenants(redis_client):
    flags = [make_flag(f"f{n}", default=bool(n % 2)) for n in range(4)]
    plan = make_plan()
    first = [make_tenant(plan=plan) for _ in range(3)]
    warm(*first)
    with CaptureQueriesContext(connection) as few:
        flags_staleness(DAYS, batch_size=2)
    more = [make_tenant(plan=plan) for _ in range(9)]
    warm(*first, *more)
    with CaptureQueriesContext(connection) as many:
        report = flags_staleness(DAYS, batch_size=2)
    assert len(many.captured_queries) == len(few.captured_queries) <= 12
    assert all(flag.tenants == 12 for flag in report.flags)
    assert {f.key for f in report.flags} == {f.key for f in flags}


def test_flags_stale_command_prints_json_and_text(capsys, redis_client):
    uniform = make_flag("uniform", default=True)
    make_tenant("acme")
    age(uniform)
    call_command("flags_stale", "--days", "30", "--format", "json")
    document = json.loads(capsys.readouterr().out)
    assert document["days"] == 30 and [f["key"] for f in document["flags"]] == ["uniform"]
    assert document["flags"][0]["stale_because"] == ["uniform", "unasked"]
    call_command("flags_stale", "--days", "30")
    assert capsys.readouterr().out.startswith("uniform\tuniform, unasked")
    call_command("flags_stale", "--days", "1", "--all", "--format", "json")
    assert [f["key"] for f in json.loads(capsys.readouterr().out)["flags"]] == ["uniform"]
    with pytest.raises(CommandError, match="--days must be"):
        call_command("flags_stale", "--days", "0")


def test_without_redis_the_report_and_page_answer_from_the_database(capsys, redis_server, client):
    make_flag("beta", default=True)
    make_tenant("acme")
    client.force_login(make_staff("root"))  # sessions live in Redis: sign in first
    redis_server.kill()
    call_command("flags_stale", "--days", "1", "--all", "--format", "json")
    assert [f["key"] for f in json.loads(capsys.readouterr().out)["flags"]] == ["beta"]
    response = client.get(f"/admin/tenants/flag/{Flag.objects.get().pk}/tenants/?reason=default")
    assert response.status_code == 200 and [row.slug for row in response.context["rows"]] == ["acme"]
