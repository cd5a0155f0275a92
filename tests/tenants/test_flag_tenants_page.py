"""The admin's per-flag page: every tenant's answer, filtered, paginated, exported; read-only, bounded SQL."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants.models import FlagAskDaily, Tenant
from tenants.selectors import tenant_rules
from tenants.services.environments import environment_create
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tenants.services.tenants import tenant_suspend, tenant_update

from .factories import make_flag, make_plan, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db


def page_url(flag, **query) -> str:
    from urllib.parse import urlencode

    return f"/admin/tenants/flag/{flag.pk}/tenants/" + (f"?{urlencode(query)}" if query else "")


def shown(response) -> list[str]:
    """Return the tenant slugs of the page's rows, in order."""
    return [row.slug for row in response.context["rows"]]


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


@pytest.fixture
def world():
    """Four tenants answering a string flag four ways: default, override, owner toggle, plan."""
    flag = make_flag(
        "theme",
        kind="string",
        default=True,
        default_value="light",
        variants=[{"key": "dark", "value": "dark"}, {"key": "blue", "value": "blue"}],
        tenant_editable=True,
    )
    gold, free = make_plan("gold"), make_plan("free")
    owner = make_user("owner")
    acme = make_tenant("acme", plan=gold)
    globex = make_tenant("globex", plan=free)
    initech = make_tenant("initech", plan=free, owner=owner)
    umbrella = make_tenant("umbrella", plan=free)
    tenant_update(tenant=acme, actor=None, labels=["eu", "beta"])
    flag_set_override(tenant=globex, flag=flag, enabled=True, variant="dark", actor=None)
    flag_owner_toggle(tenant=initech, flag=flag, enabled=False, actor=owner)
    tenant_suspend(tenant=umbrella, actor=None, reason="unpaid")
    return flag


def test_every_tenant_with_its_answer_reason_override_and_owner_toggle(staff_client, world):
    response = staff_client.get(page_url(world))
    assert response.status_code == 200
    rows = {row.slug: row for row in response.context["rows"]}
    assert list(rows) == ["acme", "globex", "initech", "umbrella"]
    assert (rows["acme"].value, rows["acme"].reason, rows["acme"].environment) == ("light", "default", "production")
    assert (rows["globex"].variant, rows["globex"].reason) == ("dark", "admin_override")
    assert rows["globex"].override["variant"] == "dark" and rows["globex"].owner_toggle is None
    assert (rows["initech"].enabled, rows["initech"].reason) == (False, "owner_toggle")
    assert rows["initech"].owner_toggle == {"enabled": False, "variant": None}
    html = response.content.decode()
    assert '<th scope="col" class="environment">Environment</th>' in html
    assert '<option value="production">production</option>' in html  # the environment filter
    assert "4 tenants" in html
    assert '<form method="post"' not in html  # read-only


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"reason": "admin_override"}, ["globex"]),
        ({"reason": "default"}, ["acme", "umbrella"]),
        ({"value": "dark"}, ["globex"]),  # a variant key
        ({"value": '"light"'}, ["acme", "umbrella"]),  # the value as JSON
        ({"value": "null"}, ["initech"]),
        ({"plan": "gold"}, ["acme"]),
        ({"status": "suspended"}, ["umbrella"]),
        ({"label": "eu"}, ["acme"]),
        ({"override": "yes"}, ["globex"]),
        ({"override": "no", "owner": "no"}, ["acme", "umbrella"]),
        ({"owner": "yes"}, ["initech"]),
        ({"reason": "default", "plan": "free"}, ["umbrella"]),
        ({"reason": "not-a-reason"}, ["acme", "globex", "initech", "umbrella"]),  # unknown choices filter nothing
    ],
)
def test_filters(staff_client, world, query, expected):
    assert shown(staff_client.get(page_url(world, **query))) == expected


def test_the_label_filter_also_runs_without_json_containment_in_sql(staff_client, world, monkeypatch):
    from tenants.flagreport import FlagTenants

    monkeypatch.setattr(FlagTenants, "_label_in_python", lambda self: bool(self.filters.label))
    assert shown(staff_client.get(page_url(world, label="beta"))) == ["acme"]
    assert shown(staff_client.get(page_url(world, label="beta", reason="default"))) == ["acme"]


def test_deleted_tenants_only_when_asked_for(staff_client, world):
    Tenant.objects.filter(slug="umbrella").update(status=Tenant.Status.DELETED)
    assert "umbrella" not in shown(staff_client.get(page_url(world)))
    assert shown(staff_client.get(page_url(world, status="deleted"))) == ["umbrella"]


def test_csv_export_of_the_filtered_list(staff_client, world):
    response = staff_client.get(page_url(world, plan="free", format="csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="flag-theme-tenants.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["tenant"] for r in rows] == ["globex", "initech", "umbrella"]
    assert rows[0]["environment"] == "production" and rows[0]["variant"] == "dark"
    assert rows[0]["reason"] == "admin_override" and '"variant": "dark"' in rows[0]["override"]
    answered = staff_client.get(page_url(world, reason="owner_toggle", format="csv")).content.decode()
    assert [r["tenant"] for r in csv.DictReader(io.StringIO(answered))] == ["initech"]


def test_pagination_50_a_page_keeps_the_filters(staff_client):
    flag = make_flag("beta", default=True)
    plan = make_plan("bulk")
    for n in range(120):
        make_tenant(f"t{n:03d}", plan=plan)
    first = staff_client.get(page_url(flag, plan="bulk"))
    assert len(first.context["rows"]) == 50 and first.context["page"].paginator.count == 120
    assert 'href="?plan=bulk&amp;p=2"' in first.content.decode()
    last = staff_client.get(page_url(flag, plan="bulk", p=3))
    assert shown(last) == [f"t{n:03d}" for n in range(100, 120)]
    answered = staff_client.get(page_url(flag, reason="default", p=3))
    assert len(answered.context["rows"]) == 20  # an answer filter pages answered rows
    assert staff_client.get(page_url(flag, p="junk")).status_code == 200


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_sql_is_bounded_whatever_the_number_of_tenants(staff_client):
    flag = make_flag("beta")
    plan = make_plan("bulk")
    tenants = [make_tenant(plan=plan) for _ in range(5)]
    flag_set_override(tenant=tenants[0], flag=flag, enabled=True, actor=None)
    for tenant in tenants:
        tenant_rules(Tenant.objects.get(pk=tenant.pk))
    staff_client.get("/admin/")  # the session's first request pays its own one-off queries
    few = queries_for(staff_client, page_url(flag))
    few_filtered = queries_for(staff_client, page_url(flag, reason="admin_override"))
    tenants += [make_tenant(plan=plan) for _ in range(60)]
    for tenant in tenants:
        tenant_rules(Tenant.objects.get(pk=tenant.pk))
    assert queries_for(staff_client, page_url(flag)) == few
    assert queries_for(staff_client, page_url(flag, reason="admin_override")) == few_filtered
    assert few <= 15


def test_cold_documents_are_compiled_in_batches_not_per_tenant(staff_client):
    flag = make_flag("beta")
    plan = make_plan("bulk")
    for _ in range(5):
        make_tenant(plan=plan)
    staff_client.get("/admin/")
    few = queries_for(staff_client, page_url(flag, reason="default"))
    for _ in range(40):
        make_tenant(plan=plan)
    assert queries_for(staff_client, page_url(flag, reason="default")) == few


def test_the_flag_change_page_links_here_and_the_list_links_the_stale_report(staff_client, world):
    change = staff_client.get(f"/admin/tenants/flag/{world.pk}/change/").content.decode()
    assert f'href="/admin/tenants/flag/{world.pk}/tenants/"' in change
    assert 'href="/admin/tenants/flag/stale/"' in staff_client.get("/admin/tenants/flag/").content.decode()


def test_view_only_staff_may_read_and_others_may_not(world):
    viewer = get_user_model().objects.create_user("viewer", password="pw-123456789", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_flag"))
    client = Client()
    client.force_login(viewer)
    assert client.get(page_url(world)).status_code == 200
    assert page_url(world) in client.get(f"/admin/tenants/flag/{world.pk}/change/").content.decode()
    assert client.get(page_url(world, format="csv")).status_code == 200
    assert client.get("/admin/tenants/flag/stale/").status_code == 200
    assert client.post(page_url(world)).status_code == 405  # read-only: GET only
    other = get_user_model().objects.create_user("other", password="pw-123456789", is_staff=True)
    client.force_login(other)
    assert client.get(page_url(world)).status_code == 403
    assert client.get("/admin/tenants/flag/stale/").status_code == 403
    client.force_login(make_user("member"))  # not staff: the admin's login page
    response = client.get(page_url(world))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Client().get(page_url(world, format="csv")).status_code == 302


def test_an_unknown_flag_redirects_to_the_list(staff_client):
    response = staff_client.get("/admin/tenants/flag/999999/tenants/")
    assert response.status_code == 302


def test_stale_report_page_lists_stale_flags(staff_client):
    make_flag("lonely", default=True)
    make_tenant("acme")
    FlagAskDaily.objects.create(flag_key="other", day="2020-01-01", asks=1)
    response = staff_client.get("/admin/tenants/flag/stale/?days=1")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Asks are counted since 2020-01-01" in html
    # Created just now: a recent change, so only "unasked".
    assert 'data-flag="lonely"' in html and "unasked" in html
    assert staff_client.get("/admin/tenants/flag/stale/?days=junk").status_code == 200


@pytest.fixture
def staged(world):
    """acme and globex have staging; globex's staging overrides the flag with blue, acme's has nothing."""
    acme, globex = Tenant.objects.get(slug="acme"), Tenant.objects.get(slug="globex")
    for tenant in (acme, globex):
        environment_create(tenant=tenant, key="staging", actor=None)
    flag_set_override(tenant=globex, flag=world, enabled=True, variant="blue", environment="staging", actor=None)
    return world


def answers(response) -> list[tuple[str, str, str | None, str]]:
    return [(row.slug, row.environment, row.variant, row.reason) for row in response.context["rows"]]


def test_one_row_per_tenant_and_environment(staff_client, staged):
    response = staff_client.get(page_url(staged))
    assert answers(response) == [
        ("acme", "production", None, "default"),
        ("acme", "staging", None, "default"),
        ("globex", "production", "dark", "admin_override"),
        ("globex", "staging", "blue", "admin_override"),
        ("initech", "production", None, "owner_toggle"),
        ("umbrella", "production", None, "default"),
    ]
    html = response.content.decode()
    assert 'data-tenant="globex" data-environment="staging"' in html
    assert '<option value="staging">staging</option>' in html
    assert "4 tenants" in html  # pages count tenants; each brings its environments


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"environment": "staging"}, [("acme", "staging"), ("globex", "staging")]),
        ({"environment": "production", "override": "yes"}, [("globex", "production")]),
        ({"environment": "staging", "override": "yes"}, [("globex", "staging")]),
        ({"override": "yes"}, [("globex", "production"), ("globex", "staging")]),
        ({"value": "blue"}, [("globex", "staging")]),
        ({"value": "blue", "environment": "production"}, []),
        ({"environment": "qa"}, []),  # an environment no tenant has
        ({"environment": "Not A Key!"}, None),  # not an environment key: filters nothing
    ],
)
def test_the_environment_filter(staff_client, staged, query, expected):
    rows = [(row.slug, row.environment) for row in staff_client.get(page_url(staged, **query)).context["rows"]]
    if expected is None:
        assert len(rows) == 6
    else:
        assert rows == expected


def test_no_override_keeps_a_tenants_rows_without_one_in_any_environment(staff_client, staged):
    acme = Tenant.objects.get(slug="acme")
    flag_set_override(tenant=acme, flag=staged, enabled=True, variant="blue", environment="staging", actor=None)
    rows = [(row.slug, row.environment) for row in staff_client.get(page_url(staged, override="no")).context["rows"]]
    assert rows == [("acme", "production"), ("initech", "production"), ("umbrella", "production")]
    staging = staff_client.get(page_url(staged, override="no", environment="staging")).context["rows"]
    assert [(row.slug, row.environment) for row in staging] == []


def test_csv_has_a_row_per_tenant_and_environment(staff_client, staged):
    response = staff_client.get(page_url(staged, plan="free", format="csv"))
    rows = [
        (r["tenant"], r["environment"], r["variant"]) for r in csv.DictReader(io.StringIO(response.content.decode()))
    ]
    assert rows == [
        ("globex", "production", "dark"),
        ("globex", "staging", "blue"),
        ("initech", "production", ""),
        ("umbrella", "production", ""),
    ]


def test_staging_answers_come_from_the_staging_document_when_warm(staff_client, staged, redis_client):
    from tenants.flagreport import FlagTenantFilters, FlagTenants

    globex = Tenant.objects.get(slug="globex")
    tenant_rules(globex, "staging")  # warms staging's cached document
    flagged = FlagTenants(staged, FlagTenantFilters(environment="staging"))
    with CaptureQueriesContext(connection) as captured:
        rows = flagged.answer(
            [
                {
                    "pk": globex.pk,
                    "slug": "globex",
                    "name": "",
                    "status": "active",
                    "plan__code": "free",
                    "labels": [],
                    "cache_version": globex.cache_version,
                }
            ]
        )
    assert [(row.environment, row.variant) for row in rows] == [("staging", "blue")]
    assert not any("tenants_segment" in q["sql"] for q in captured.captured_queries)  # nothing compiled


def test_sql_stays_bounded_with_environments(staff_client):
    flag = make_flag("beta")
    plan = make_plan("bulk")  # three environments by default
    tenants = [make_tenant(plan=plan) for _ in range(5)]
    for tenant in tenants:
        environment_create(tenant=tenant, key="staging", actor=None)
    staff_client.get("/admin/")
    few = queries_for(staff_client, page_url(flag))
    few_staging = queries_for(staff_client, page_url(flag, environment="staging", reason="default"))
    for _ in range(30):
        tenant = make_tenant(plan=plan)
        environment_create(tenant=tenant, key="staging", actor=None)
        environment_create(tenant=tenant, key="qa", actor=None)
        flag_set_override(tenant=tenant, flag=flag, enabled=True, environment="qa", actor=None)
    assert queries_for(staff_client, page_url(flag)) == few
    assert queries_for(staff_client, page_url(flag, environment="staging", reason="default")) == few_staging
