"""Flag evaluation: reasons, deterministic monotonic rollout, per-tenant cache with version stamps."""

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.keys import document_key, version_key
from tenants.models import Tenant
from tenants.selectors import (
    flag_is_enabled,
    flags_evaluate,
    flags_explain,
    rollout_admits,
    tenant_limits,
    tenants_for_user,
    usage_daily,
)
from tenants.services.flags import flag_owner_toggle, flag_set_override, flag_update
from tenants.services.plans import plan_update
from tenants.services.tenants import tenant_update

from .factories import make_flag, make_plan, make_tenant, make_user

subjects = st.text(min_size=0, max_size=40)
flag_keys = st.from_regex(r"[a-z0-9_.-]{1,64}", fullmatch=True)


@given(key=flag_keys, subject=subjects, percent=st.integers(0, 100))
def test_rollout_is_deterministic(key, subject, percent):
    assert rollout_admits(key, subject, percent) == rollout_admits(key, subject, percent)


@given(key=flag_keys, subject=subjects, low=st.integers(0, 100), high=st.integers(0, 100))
def test_raising_the_percentage_never_turns_a_subject_off(key, subject, low, high):
    low, high = sorted((low, high))
    if rollout_admits(key, subject, low):
        assert rollout_admits(key, subject, high)


@settings(max_examples=20)
@given(key=flag_keys)
def test_rollout_bounds_and_rough_proportion(key):
    population = [f"user-{n}" for n in range(2000)]
    assert not any(rollout_admits(key, s, 0) for s in population)
    assert all(rollout_admits(key, s, 100) for s in population)
    share = sum(rollout_admits(key, s, 30) for s in population) / len(population)
    assert 0.24 < share < 0.36


@pytest.mark.django_db
def test_evaluation_order_and_reasons():
    owner = make_user("owner")
    plan = make_plan("gold")
    tenant = make_tenant("acme", plan=plan, owner=owner)
    make_flag("plain", default=True)
    make_flag("from_plan", default=False)
    admin_flag = make_flag("admin_flag", default=True)
    owner_flag = make_flag("owner_flag", tenant_editable=True)
    rolled = make_flag("rolled")
    old = make_flag("old", default=True)
    plan_update(plan=plan, actor=None, default_flags={"from_plan": True, "admin_flag": True})
    flag_set_override(tenant=tenant, flag=admin_flag, enabled=False, actor=None)
    flag_owner_toggle(tenant=tenant, flag=owner_flag, enabled=True, actor=owner)
    flag_set_override(tenant=tenant, flag=rolled, enabled=True, rollout_percent=50, actor=None)
    flag_update(flag=old, actor=None, archived=True)
    tenant.refresh_from_db()
    result = flags_evaluate(tenant)
    reasons = {key: (flag.enabled, flag.reason) for key, flag in result.items() if key != "rolled"}
    assert reasons == {
        "plain": (True, "default"),
        "from_plan": (True, "plan"),
        "admin_flag": (False, "admin_override"),
        "owner_flag": (True, "owner_toggle"),
        "old": (False, "archived"),
    }
    assert result["rolled"].reason == "rollout"
    outcomes = {flags_evaluate(tenant, subject=f"s{n}")["rolled"].enabled for n in range(50)}
    assert outcomes == {True, False}
    assert flag_is_enabled(tenant, "rolled", "s1") == rollout_admits("rolled", "s1", 50)
    assert flag_is_enabled(tenant, "missing") is False
    explained = {f.key: f for f in flags_explain(tenant)}
    assert "old" not in explained and explained["owner_flag"].editable and not explained["plain"].editable
    assert all(isinstance(f.version, int) and f.version > 0 for f in result.values())


@pytest.mark.django_db
def test_warm_read_makes_no_sql_queries(django_assert_num_queries, redis_client):
    tenant = make_tenant("acme")
    make_flag("beta", default=True)
    tenant.refresh_from_db()
    flags_evaluate(tenant)  # cold: builds and caches
    assert redis_client.hget(document_key(tenant.slug, tenant.pk), "ver") == str(tenant.cache_version)
    with django_assert_num_queries(0):
        assert flags_evaluate(tenant)["beta"].enabled
        assert flag_is_enabled(tenant, "beta", subject="u1")
        assert flags_explain(tenant)[0].key == "beta"


@pytest.mark.django_db
def test_tenants_never_share_cache_keys(redis_client):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None)
    for tenant in (acme, globex):
        tenant.refresh_from_db()
    Tenant.objects.filter(pk=globex.pk).update(cache_version=acme.cache_version)
    globex.refresh_from_db()
    assert flags_evaluate(acme)["beta"].enabled is True
    assert flags_evaluate(globex)["beta"].enabled is False
    assert document_key(acme.slug, acme.pk) != document_key(globex.slug, globex.pk)
    keys = sorted(redis_client.scan_iter("agentapi:flags:*"))
    assert keys == sorted([document_key(acme.slug, acme.pk), document_key(globex.slug, globex.pk)])


@pytest.mark.django_db(transaction=True)
def test_invalidation_happens_on_commit_and_not_on_rollback(redis_client):
    tenant = make_tenant("acme")
    beta = make_flag("beta")
    tenant.refresh_from_db()
    assert flags_evaluate(tenant)["beta"].enabled is False
    cached = document_key(tenant.slug, tenant.pk)
    assert redis_client.exists(cached)

    with pytest.raises(RuntimeError), transaction.atomic():
        flag_set_override(tenant=tenant, flag=beta, enabled=True, actor=None)
        raise RuntimeError("abort")
    tenant.refresh_from_db()
    assert redis_client.exists(cached), "a rolled-back write must not invalidate"
    assert flags_evaluate(tenant)["beta"].enabled is False

    with transaction.atomic():
        flag_set_override(tenant=tenant, flag=beta, enabled=True, actor=None)
        assert redis_client.exists(cached), "nothing happens before commit"
    assert not redis_client.exists(cached)
    tenant.refresh_from_db()
    assert redis_client.get(version_key(tenant.slug, tenant.pk)) == str(tenant.cache_version)
    assert flags_evaluate(tenant)["beta"].enabled is True


@pytest.mark.django_db
def test_evaluation_falls_back_to_the_database_when_redis_is_down(redis_server):
    tenant = make_tenant("acme")
    make_flag("beta", default=True)
    tenant.refresh_from_db()
    redis_server.kill()
    assert flags_evaluate(tenant)["beta"].enabled is True


@pytest.mark.django_db
def test_limits_and_memberships(settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 60
    settings.RESILIENCE_RATE_LIMIT_BURST = 10
    owner = make_user("owner")
    inherit = make_tenant("acme", owner=owner)
    custom = make_tenant("globex", plan=make_plan("big", rate_limit_per_minute=600, burst=0, daily_quota=1000))
    assert tenant_limits(inherit) == (60, 10, None)
    assert tenant_limits(custom) == (600, 0, 1000)
    assert [(m.tenant.slug, m.role) for m in tenants_for_user(owner)] == [("acme", "owner")]
    tenant_update(tenant=inherit, actor=None, name="Acme 2")
    rows = usage_daily(inherit, days=7)
    assert len(rows) == 7 and all(row["requests"] == 0 for row in rows)
