"""The tenant admin: labels, typed overrides with owner bounds, the tenant's flags and the evaluate tool."""

import json
import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Tenant, TenantFlag
from tenants.services.flags import flag_owner_toggle, flag_set_override, segment_create
from tests.hardening.conftest import staff_with

from .factories import make_flag, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db

VARIANTS = [
    {"key": "classic", "value": "classic", "weight": 0},
    {"key": "express", "value": "one page", "weight": 0},
    {"key": "wizard", "value": "steps", "weight": 0},
]


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def change_data(tenant, **extra) -> dict:
    data = {
        "name": tenant.name,
        "plan": tenant.plan_id,
        "labels": ", ".join(tenant.labels),
        "settings": "{}",
        "upstream_url": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "flag_overrides-TOTAL_FORMS": "0",
        "flag_overrides-INITIAL_FORMS": "0",
    }
    data.update(extra)
    return data


def test_labels_are_saved_through_tenant_update_and_bad_ones_are_a_form_error(staff_client):
    tenant = make_tenant("acme")
    response = staff_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", change_data(tenant, labels="EU, beta"))
    assert response.status_code == 302
    assert Tenant.objects.get().labels == ["beta", "eu"]
    assert AuditEvent.objects.filter(action="tenant.update").count() == 1
    bad = staff_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", change_data(tenant, labels="eu, -nope"))
    assert bad.status_code == 200
    assert "label '-nope'" in " ".join(bad.context["adminform"].form.errors["labels"])
    assert Tenant.objects.get().labels == ["beta", "eu"]


def test_a_typed_override_serves_a_variant_and_bounds_the_owner(staff_client):
    tenant = make_tenant("acme")
    flag = make_flag("checkout", kind="string", default_value="classic", variants=VARIANTS, tenant_editable=True)
    response = staff_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        change_data(
            tenant,
            **{
                "flag_overrides-TOTAL_FORMS": "1",
                "flag_overrides-0-flag": flag.pk,
                "flag_overrides-0-enabled": "on",
                "flag_overrides-0-rollout_percent": "30",
                "flag_overrides-0-variant": "express",
                "flag_overrides-0-value": "",
                "flag_overrides-0-owner_variants": "express, wizard",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    override = TenantFlag.objects.get()
    assert (override.rollout_percent, override.variant, override.owner_variants) == (
        30,
        "express",
        ["express", "wizard"],
    )
    page = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert 'value="express, wizard"' in page
    row = re.search(r'<tr id="tenant-flag-checkout">.*?</tr>', page, re.S).group(0)
    assert "platform: 30 % rollout of variant express (owners may pick express, wizard)" in row


def test_a_bad_override_is_an_error_on_its_field_not_a_500(staff_client):
    tenant = make_tenant("acme")
    flag = make_flag("limits", kind="number", default_value=10, variants=[{"key": "big", "value": 100, "weight": 0}])
    rows = {
        "flag_overrides-TOTAL_FORMS": "1",
        "flag_overrides-0-flag": flag.pk,
        "flag_overrides-0-enabled": "on",
        "flag_overrides-0-rollout_percent": "100",
        "flag_overrides-0-variant": "",
        "flag_overrides-0-value": "lots",
        "flag_overrides-0-owner_variants": "",
    }
    response = staff_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", change_data(tenant, **rows))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][1].formset
    assert formset.forms[0].errors["value"] == ["'lots' is not a number."]
    rows.update({"flag_overrides-0-value": "", "flag_overrides-0-owner_variants": "big, huge"})
    response = staff_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", change_data(tenant, **rows))
    assert response.context["inline_admin_formsets"][1].formset.forms[0].errors["owner_variants"] == [
        "no variant 'huge' on flag limits."
    ]
    assert not TenantFlag.objects.exists()


def test_the_tenant_page_shows_each_flags_value_variant_and_reason(staff_client):
    owner = make_user("owner")
    tenant = make_tenant("acme", owner=owner)
    flag = make_flag("checkout", kind="string", default_value="classic", variants=VARIANTS, tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, owner_variants=["wizard"], actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, variant="wizard", actor=owner)
    make_flag("beta", default=True)
    page = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    checkout = re.search(r'<tr id="tenant-flag-checkout">.*?</tr>', page, re.S).group(0)
    assert "<code>&quot;steps&quot;</code>" in checkout and ">wizard<" in checkout and "owner_toggle" in checkout
    assert "owner: on, variant wizard" in checkout
    beta = re.search(r'<tr id="tenant-flag-beta">.*?</tr>', page, re.S).group(0)
    assert ">on<" in beta and ">default<" in beta
    assert f"/admin/tenants/flag/evaluate/?tenant={tenant.slug}" in page


# ----------------------------------------------------------------------------------------- evaluate
def test_the_evaluate_tool_shows_every_flag_and_the_rule_that_decided(staff_client):
    tenant = make_tenant("acme")
    segment_create(
        key="new-app",
        conditions=[{"attribute": "context.app_version", "op": "semver_gte", "values": ["2.0.0"]}],
        actor=None,
    )
    make_flag(
        "checkout",
        kind="string",
        default_value="classic",
        default=True,
        variants=VARIANTS,
        rules=[{"segment": "new-app", "serve": {"enabled": True, "variant": "express"}}],
    )
    make_flag("beta")
    form = staff_client.get("/admin/tenants/flag/evaluate/")
    assert form.status_code == 200 and 'name="context-0-name"' in form.content.decode()
    response = staff_client.get(
        "/admin/tenants/flag/evaluate/",
        {"tenant": "acme", "subject": "user-7", "context-0-name": "app_version", "context-0-value": "2.1.0"},
    )
    page = response.content.decode()
    checkout = re.search(r'<tr id="eval-checkout">.*?</tr>', page, re.S).group(0)
    assert "&quot;one page&quot;" in checkout and ">express<" in checkout and ">rule<" in checkout
    assert "rule 1: segment new-app → variant express" in checkout
    assert "subject <code>user-7</code>" in page
    old = staff_client.get(
        "/admin/tenants/flag/evaluate/",
        {"tenant": "acme", "context_json": json.dumps({"app_version": "1.9.0"})},
    ).content.decode()
    checkout = re.search(r'<tr id="eval-checkout">.*?</tr>', old, re.S).group(0)
    assert "&quot;classic&quot;" in checkout and ">default<" in checkout
    assert f"subject <code>{tenant.pk}</code>" in old  # no subject: the tenant itself


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"tenant": "nope"}, "tenant", "No such tenant."),
        ({"tenant": "acme", "context_json": "[1]"}, "context_json", "A JSON object"),
        ({"tenant": "acme", "context_json": "{nope"}, "context_json", "not valid JSON"),
        ({"tenant": "acme", "context_json": "[" * 5000}, "context_json", "nested too deeply"),
        ({"tenant": "acme", "context-0-name": "bad name!", "context-0-value": "x"}, "context", "Row 1: a name is"),
        ({"tenant": "acme", "subject": "s" * 300}, "subject", "at most 256"),
    ],
)
def test_bad_evaluate_input_is_a_form_error(staff_client, query, field, message):
    make_tenant("acme")
    response = staff_client.get("/admin/tenants/flag/evaluate/", query)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert response.context["rows"] is None


def test_evaluate_needs_view_permission_on_flags_and_writes_nothing():
    make_tenant("acme")
    make_flag("beta")
    viewer = Client()
    viewer.force_login(staff_with("flag-viewer", "tenants.view_flag"))
    assert viewer.get("/admin/tenants/flag/evaluate/", {"tenant": "acme"}).status_code == 200
    assert viewer.post("/admin/tenants/flag/evaluate/", {"tenant": "acme"}).status_code == 405
    other = Client()
    other.force_login(staff_with("tenant-viewer", "tenants.view_tenant"))
    assert other.get("/admin/tenants/flag/evaluate/", {"tenant": "acme"}).status_code == 403
    outsider = Client()
    outsider.force_login(make_user("someone"))
    assert outsider.get("/admin/tenants/flag/evaluate/").status_code == 302


def test_view_only_staff_cannot_change_flags_or_segments():
    flag = make_flag("beta")
    segment = segment_create(key="eu", conditions=[], actor=None)
    viewer = Client()
    viewer.force_login(staff_with("viewer", "tenants.view_flag", "tenants.view_segment"))
    page = viewer.get(f"/admin/tenants/flag/{flag.pk}/change/")
    assert page.status_code == 200 and 'name="rules-0-segment"' not in page.content.decode()
    assert viewer.post(f"/admin/tenants/flag/{flag.pk}/change/", {"description": "x"}).status_code == 403
    assert viewer.post("/admin/tenants/flag/add/", {"key": "x"}).status_code == 403
    assert viewer.get(f"/admin/tenants/segment/{segment.pk}/change/").status_code == 200
    assert viewer.post(f"/admin/tenants/segment/{segment.pk}/change/", {"name": "x"}).status_code == 403
    assert viewer.post(f"/admin/tenants/segment/{segment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert not AuditEvent.objects.filter(actor_label="viewer").exclude(action__startswith="auth.").exists()
