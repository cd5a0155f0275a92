"""The tenant admin's environments: the tenant page, add/delete, overrides per environment, promote, evaluate."""

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from audit.models import AuditAction, AuditEvent
from tenants.models import PRODUCTION, Environment, OwnerToggle, TenantFlag
from tenants.services.apikeys import apikey_revoke
from tenants.services.environments import environment_create, environment_diff
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tests.hardening.conftest import staff_with

from .factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


@pytest.fixture
def viewer_client():
    client = Client()
    client.force_login(staff_with("viewer", "tenants.view_tenant", "tenants.view_flag"))
    return client


@pytest.fixture
def acme():
    tenant = make_tenant("acme", owner=make_user("acme-owner"))
    environment_create(tenant=tenant, key="staging", name="Staging", actor=None)
    return tenant


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def tenant_url(tenant, suffix="change/") -> str:
    return f"/admin/tenants/tenant/{tenant.pk}/{suffix}"


def change_data(tenant, **extra) -> dict:
    data = {
        "name": tenant.name,
        "plan": tenant.plan_id,
        "labels": "",
        "settings": "{}",
        "upstream_url": "",
        "flag_overrides-TOTAL_FORMS": "0",
        "flag_overrides-INITIAL_FORMS": "0",
    }
    members = list(tenant.memberships.order_by("pk"))
    data["memberships-TOTAL_FORMS"] = data["memberships-INITIAL_FORMS"] = str(len(members))
    for index, member in enumerate(members):
        prefix = f"memberships-{index}-"
        data.update({prefix + "id": member.pk, prefix + "tenant": tenant.pk, prefix + "user": member.user_id})
        data[prefix + "role"] = member.role
    data.update(extra)
    return data


# -- the tenant page ----------------------------------------------------------------------------


def test_the_tenant_page_lists_environments_with_counts_and_flags_per_environment(staff_client, acme):
    flag = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=acme, flag=flag, enabled=True, environment="staging", actor=None)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=False, actor=acme.memberships.get().user)
    make_key(acme, name="ci", environment="staging")
    html = staff_client.get(tenant_url(acme)).content.decode()
    production = re.search(r'<tr data-environment="production">(.*?)</tr>', html, re.S).group(1)
    staging = re.search(r'<tr data-environment="staging">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", production) == ["—", "0", "1", "0"]
    assert re.findall(r"<td>([^<]*)</td>", staging) == ["Staging", "1", "0", "1"]
    assert "2 of 3 allowed by the plan" in html
    assert f'href="/admin/tenants/tenant/{acme.pk}/environments/"' in html
    # One flags table per environment: production off by its owner, staging on by the override.
    assert re.search(r'<tr id="tenant-flag-beta">.*?<td>off</td>.*?owner_toggle', html, re.S)
    assert re.search(r'<tr id="tenant-flag-staging-beta">.*?<td>on</td>.*?admin_override', html, re.S)
    assert '<h3 id="flags-staging" class="environment-flags">staging</h3>' in html


# -- add and delete -----------------------------------------------------------------------------


def test_add_an_environment_through_the_service(staff_client, acme):
    response = staff_client.post(tenant_url(acme, "environments/"), {"action": "add", "key": "qa", "name": "QA"})
    assert response.status_code == 302
    assert list(Environment.objects.filter(tenant=acme).values_list("key", "name")) == [
        ("qa", "QA"),
        ("staging", "Staging"),
    ]
    assert AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_CREATE, object_id="qa").exists()
    assert "Added environment qa." in messages_of(response)


@pytest.mark.parametrize(
    "key,error",
    [
        ("Not Valid", "key: use 1-32 characters"),
        ("production", "every tenant has production already"),
        ("staging", "has an environment 'staging' already"),
        ("", "This field is required."),
    ],
)
def test_a_bad_environment_is_an_error_on_the_key_field(staff_client, acme, key, error):
    response = staff_client.post(tenant_url(acme, "environments/"), {"action": "add", "key": key})
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["key"])
    assert Environment.objects.filter(tenant=acme).count() == 1


def test_the_plans_bound_is_an_error_on_the_key_field(staff_client):
    tenant = make_tenant("small", plan=make_plan("solo"))
    for key in ("qa", "dev"):
        staff_client.post(tenant_url(tenant, "environments/"), {"action": "add", "key": key})
    response = staff_client.post(tenant_url(tenant, "environments/"), {"action": "add", "key": "demo"})
    assert response.status_code == 200
    assert "allows 3 environments" in " ".join(response.context["form"].errors["key"])


def test_delete_asks_first_showing_what_goes_with_it(staff_client, acme):
    flag_set_override(tenant=acme, flag=make_flag("beta"), enabled=True, environment="staging", actor=None)
    response = staff_client.post(tenant_url(acme, "environments/"), {"action": "delete", "environment": "staging"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "also deletes its 1 platform override and 0 owner toggles" in html
    assert '<input type="hidden" name="confirm" value="yes">' in html
    assert Environment.objects.filter(tenant=acme).exists() and TenantFlag.objects.exists()


def test_delete_an_environment_and_refusals_are_messages(staff_client, acme):
    api_key, _ = make_key(acme, name="ci", environment="staging")
    url = tenant_url(acme, "environments/")
    refused = staff_client.post(url, {"action": "delete", "environment": "staging", "confirm": "yes"})
    assert refused.status_code == 302
    assert any("revoke its API keys first" in m for m in messages_of(refused))
    assert Environment.objects.filter(tenant=acme, key="staging").exists()
    production = staff_client.post(url, {"action": "delete", "environment": "production"})
    assert any("production cannot be deleted" in m for m in messages_of(production))
    unknown = staff_client.post(url, {"action": "delete", "environment": "nope"})
    assert any("has no environment 'nope'" in m for m in messages_of(unknown))
    apikey_revoke(api_key=api_key, actor=None)
    done = staff_client.post(url, {"action": "delete", "environment": "staging", "confirm": "yes"})
    assert any("Deleted environment staging" in m for m in messages_of(done))
    assert not Environment.objects.filter(tenant=acme).exists()
    assert AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_DELETE, object_id="staging").exists()


def test_an_unknown_tenant_redirects_to_the_list(staff_client):
    missing = "/admin/tenants/tenant/00000000-0000-0000-0000-000000000000/environments/"
    assert staff_client.get(missing).status_code == 302
    assert staff_client.get(missing + "promote/").status_code == 302


# -- overrides and owner toggles in an environment ----------------------------------------------


def override_row(flag, **extra) -> dict:
    data = {
        "flag_overrides-TOTAL_FORMS": "1",
        "flag_overrides-0-flag": flag.pk,
        "flag_overrides-0-enabled": "on",
        "flag_overrides-0-rollout_percent": "100",
        "flag_overrides-0-variant": "",
        "flag_overrides-0-value": "",
        "flag_overrides-0-owner_variants": "",
    }
    data.update({f"flag_overrides-0-{name}": value for name, value in extra.items()})
    return data


def test_an_override_is_set_in_the_chosen_environment(staff_client, acme):
    flag = make_flag("beta")
    response = staff_client.post(tenant_url(acme), change_data(acme, **override_row(flag, environment="staging")))
    assert response.status_code == 302, response.content.decode()[:3000]
    override = TenantFlag.objects.get()
    assert (override.environment, override.enabled) == ("staging", True)
    page = staff_client.get(tenant_url(acme)).content.decode()
    assert '<option value="staging" selected>staging</option>' in page
    assert re.search(r'name="flag_overrides-0-environment"[^>]*disabled', page)  # fixed once saved


def test_an_override_in_an_environment_the_tenant_lacks_is_a_form_error(staff_client, acme):
    flag = make_flag("beta")
    response = staff_client.post(tenant_url(acme), change_data(acme, **override_row(flag, environment="qa")))
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "flag_overrides")
    assert "qa is not one of the available choices" in " ".join(formset.formset.forms[0].errors["environment"])
    assert not TenantFlag.objects.exists()


def test_a_second_override_of_a_flag_in_the_same_environment_is_a_form_error(staff_client, acme):
    flag = make_flag("beta")
    existing = flag_set_override(tenant=acme, flag=flag, enabled=False, environment="staging", actor=None)
    data = change_data(acme)
    # Row 0 is the existing override, unchanged; row 1 a new one of the same flag in the same environment.
    data.update(
        {
            "flag_overrides-TOTAL_FORMS": "2",
            "flag_overrides-INITIAL_FORMS": "1",
            "flag_overrides-0-id": existing.pk,
            "flag_overrides-0-tenant": acme.pk,
            "flag_overrides-0-flag": flag.pk,
            "flag_overrides-0-rollout_percent": "100",
            "flag_overrides-1-environment": "staging",
            "flag_overrides-1-flag": flag.pk,
            "flag_overrides-1-enabled": "on",
            "flag_overrides-1-rollout_percent": "100",
        }
    )
    response = staff_client.post(tenant_url(acme), data)
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "flag_overrides")
    errors = " ".join(formset.formset.non_form_errors()) + str(formset.formset.errors)
    assert "already exists" in errors or "duplicate data" in errors, errors
    assert TenantFlag.objects.get().enabled is False
    # The same flag in production is another override, and fine.
    data["flag_overrides-1-environment"] = "production"
    assert staff_client.post(tenant_url(acme), data).status_code == 302
    assert sorted(TenantFlag.objects.values_list("environment", "enabled")) == [
        ("production", True),
        ("staging", False),
    ]


def test_reset_owner_toggles_resets_each_environments_toggle(staff_client, acme):
    owner = acme.memberships.get().user
    flag = make_flag("beta", tenant_editable=True)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=False, actor=owner)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=True, environment="staging", actor=owner)
    response = staff_client.post(
        "/admin/tenants/tenant/", {"action": "reset_owner_toggles", "_selected_action": [acme.pk]}
    )
    assert response.status_code == 302
    assert not OwnerToggle.objects.exists()
    events = AuditEvent.objects.filter(action=AuditAction.FLAG_OWNER_RESET)
    assert sorted((e.before or {}).get("environment", PRODUCTION) for e in events) == ["production", "staging"]


# -- promote ------------------------------------------------------------------------------------


def promote_url(tenant, **query) -> str:
    from urllib.parse import urlencode

    return tenant_url(tenant, "environments/promote/") + (f"?{urlencode(query, doseq=True)}" if query else "")


def test_promote_shows_the_diff_then_applies_it(staff_client, acme):
    beta, theme = make_flag("beta"), make_flag("theme")
    flag_set_override(tenant=acme, flag=beta, enabled=True, environment="staging", actor=None)
    flag_set_override(tenant=acme, flag=theme, enabled=True, rollout_percent=20, actor=None)
    preview = staff_client.get(promote_url(acme, source="staging", target="production", layers=["overrides"]))
    assert preview.status_code == 200
    rows = [(r["flag"], r["verb"], r["before"], r["after"]) for r in preview.context["rows"]]
    assert rows == [("beta", "add", "—", "on"), ("theme", "remove", "on, at 20%", "—")]
    html = preview.content.decode()
    digest = preview.context["diff"].digest
    assert f'name="digest" value="{digest}"' in html
    assert not TenantFlag.objects.filter(environment=PRODUCTION, flag=beta).exists()  # a preview writes nothing
    done = staff_client.post(
        promote_url(acme), {"source": "staging", "target": "production", "layers": ["overrides"], "digest": digest}
    )
    assert done.status_code == 302 and done["Location"] == tenant_url(acme)
    assert "Promoted staging to production: 2 changes." in messages_of(done)
    assert TenantFlag.objects.get(environment=PRODUCTION).flag == beta
    assert AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_PROMOTE, object_id="production").count() == 1


def test_a_stale_digest_shows_a_message_and_the_fresh_diff(staff_client, acme):
    beta, theme = make_flag("beta"), make_flag("theme")
    flag_set_override(tenant=acme, flag=beta, enabled=True, environment="staging", actor=None)
    old = environment_diff(tenant=acme, source="staging", target=PRODUCTION).digest
    flag_set_override(tenant=acme, flag=theme, enabled=False, environment="staging", actor=None)  # after review
    response = staff_client.post(
        promote_url(acme), {"source": "staging", "target": "production", "layers": ["overrides"], "digest": old}
    )
    assert response.status_code == 200
    assert any("changed since this diff was shown" in m for m in messages_of(response))
    assert [r["flag"] for r in response.context["rows"]] == ["beta", "theme"]
    assert response.context["diff"].digest != old
    assert f'name="digest" value="{response.context["diff"].digest}"' in response.content.decode()
    assert not TenantFlag.objects.filter(environment=PRODUCTION).exists()


def test_a_promotion_touching_a_flag_that_requires_approval_becomes_a_change_request(staff_client, acme):
    from changes.models import ChangeRequest
    from changes.services import change_approve

    gated = make_flag("payments", requires_approval=True)
    flag_set_override(tenant=acme, flag=gated, enabled=True, environment="staging", actor=None, approved=True)
    digest = environment_diff(tenant=acme, source="staging", target=PRODUCTION).digest
    response = staff_client.post(
        promote_url(acme),
        {"source": "staging", "target": "production", "layers": ["overrides", "owner_toggles"], "digest": digest},
    )
    change = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/changes/changerequest/{change.pk}/change/"
    assert any("payments requires approval" in m and "change request" in m for m in messages_of(response))
    assert (change.operation, change.state) == ("environment.promote", ChangeRequest.State.PENDING_APPROVAL)
    assert not TenantFlag.objects.filter(environment=PRODUCTION).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_PROMOTE).exists()
    change_approve(change=change, actor=make_staff("bob"))  # another staff user
    assert TenantFlag.objects.get(environment=PRODUCTION).flag == gated


@pytest.mark.parametrize(
    "query,field,error",
    [
        ({"source": "staging", "target": "staging"}, "target", "pick an environment other than the source"),
        ({"source": "qa", "target": "production"}, "source", "Select a valid choice"),
        ({"source": "staging", "target": "production", "layers": ["nope"]}, "layers", "Select a valid choice"),
    ],
)
def test_bad_promote_input_is_a_form_error(staff_client, acme, query, field, error):
    query.setdefault("layers", ["overrides"])
    response = staff_client.get(promote_url(acme, **query))
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors[field])
    assert response.context["diff"] is None


def test_nothing_to_promote_says_so(staff_client, acme):
    response = staff_client.get(promote_url(acme, source="staging", target="production", layers=["overrides"]))
    assert "Nothing to promote" in response.content.decode()
    assert 'class="promote-confirm"' not in response.content.decode()


# -- view-only staff ----------------------------------------------------------------------------


def test_view_only_staff_read_but_every_write_is_refused(viewer_client, acme):
    flag = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=acme, flag=flag, enabled=True, environment="staging", actor=None)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=False, actor=acme.memberships.get().user)
    page = viewer_client.get(tenant_url(acme))
    assert page.status_code == 200 and 'data-environment="staging"' in page.content.decode()
    listing = viewer_client.get(tenant_url(acme, "environments/"))
    assert listing.status_code == 200
    assert 'class="environment-add"' not in listing.content.decode()
    assert 'class="environment-delete"' not in listing.content.decode()
    preview = viewer_client.get(promote_url(acme, source="staging", target="production", layers=["overrides"]))
    assert preview.status_code == 200 and preview.context["rows"]
    assert 'class="promote-confirm"' not in preview.content.decode()
    digest = preview.context["diff"].digest
    writes = [
        (tenant_url(acme, "environments/"), {"action": "add", "key": "qa"}),
        (tenant_url(acme, "environments/"), {"action": "delete", "environment": "staging"}),
        (tenant_url(acme, "environments/"), {"action": "delete", "environment": "staging", "confirm": "yes"}),
        (promote_url(acme), {"source": "staging", "target": "production", "layers": "overrides", "digest": digest}),
        (tenant_url(acme), change_data(acme, **override_row(flag, environment="staging"))),
    ]
    for url, data in writes:
        assert viewer_client.post(url, data).status_code == 403, url
    reset = viewer_client.post(
        "/admin/tenants/tenant/", {"action": "reset_owner_toggles", "_selected_action": [acme.pk]}
    )
    assert reset.status_code == 403
    assert list(Environment.objects.values_list("key", flat=True)) == ["staging"]
    assert TenantFlag.objects.get().environment == "staging" and OwnerToggle.objects.count() == 1
    assert not AuditEvent.objects.filter(actor_label="viewer").exclude(action=AuditAction.AUTH_LOGIN).exists()


def test_staff_without_view_permission_get_403(acme):
    client = Client()
    client.force_login(staff_with("nobody"))
    assert client.get(tenant_url(acme, "environments/")).status_code == 403
    assert client.get(promote_url(acme)).status_code == 403


# -- the evaluate tool --------------------------------------------------------------------------


def test_the_evaluate_tool_answers_in_the_chosen_environment(staff_client, acme):
    flag = make_flag("beta")
    flag_set_override(tenant=acme, flag=flag, enabled=True, environment="staging", actor=None)
    production = staff_client.get("/admin/tenants/flag/evaluate/", {"tenant": "acme"})
    staging = staff_client.get("/admin/tenants/flag/evaluate/", {"tenant": "acme", "environment": "staging"})
    assert [(r.key, r.enabled, r.reason) for r in production.context["rows"]] == [("beta", False, "default")]
    assert [(r.key, r.enabled, r.reason) for r in staging.context["rows"]] == [("beta", True, "admin_override")]
    assert "acme in staging:" in staging.content.decode()
    assert '<option value="staging" selected>staging</option>' in staging.content.decode()


def test_an_environment_the_tenant_lacks_is_an_evaluate_form_error(staff_client, acme):
    other = make_tenant("globex")
    environment_create(tenant=other, key="qa", actor=None)
    for environment in ("qa", "no such env!"):
        response = staff_client.get("/admin/tenants/flag/evaluate/", {"tenant": "acme", "environment": environment})
        assert response.status_code == 200 and response.context["rows"] is None
        assert "has no environment" in " ".join(response.context["form"].errors["environment"])


def test_a_guarded_override_in_staging_is_not_written_without_approval(staff_client, acme):
    gated = make_flag("payments", requires_approval=True)
    response = staff_client.post(
        tenant_url(acme), change_data(acme, **override_row(gated, environment="staging")), follow=True
    )
    assert response.status_code == 200
    # A change request when the changes app carries the environment; otherwise the refusal, naming the flag.
    assert any("payments" in m and "approval" in m for m in messages_of(response)), messages_of(response)
    assert not TenantFlag.objects.exists()


def test_the_owner_toggles_list_names_environments_other_than_production(staff_client, acme):
    owner = acme.memberships.get().user
    flag = make_flag("beta", tenant_editable=True)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=False, actor=owner)
    flag_owner_toggle(tenant=acme, flag=flag, enabled=True, environment="staging", actor=owner)
    html = staff_client.get(tenant_url(acme)).content.decode()
    assert "<code>beta</code> off by acme-owner" in html
    assert "<code>beta</code> in staging: on by acme-owner" in html


# -- API keys -----------------------------------------------------------------------------------


def test_an_api_key_is_issued_for_a_chosen_environment(staff_client, acme):
    from tenants.models import ApiKey

    data = {"tenant": acme.pk, "name": "ci", "scopes": ["flags:read"], "expires_at": "", "environment": "staging"}
    response = staff_client.post("/admin/tenants/apikey/add/", data)
    assert response.status_code == 200 and 'id="api-key-secret"' in response.content.decode()
    assert ApiKey.objects.get().environment == "staging"
    listing = staff_client.get("/admin/tenants/apikey/").content.decode()
    assert 'acme <span class="quiet">· staging</span>' in listing
    assert "?environment=staging" in listing  # the list filter
    bad = staff_client.post("/admin/tenants/apikey/add/", {**data, "name": "other", "environment": "qa"})
    assert bad.status_code == 200
    assert "has no environment 'qa'" in " ".join(bad.context["adminform"].form.errors["environment"])
    default = staff_client.post("/admin/tenants/apikey/add/", {**data, "name": "prod", "environment": ""})
    assert default.status_code == 200
    assert ApiKey.objects.get(name="prod").environment == PRODUCTION


# -- who may remove the platform's overrides ------------------------------------------------------


def test_tenant_editors_without_the_flag_permission_promote_owner_toggles_only(acme):
    client = Client()
    client.force_login(staff_with("support", "tenants.view_tenant", "tenants.change_tenant", "tenants.view_flag"))
    beta, theme = make_flag("beta"), make_flag("theme", tenant_editable=True)
    flag_set_override(tenant=acme, flag=beta, enabled=True, environment="staging", actor=None)
    flag_owner_toggle(tenant=acme, flag=theme, enabled=False, environment="staging", actor=acme.memberships.get().user)
    overrides = environment_diff(tenant=acme, source="staging", target="production", layers=["overrides"])
    refused = client.post(
        promote_url(acme),
        {"source": "staging", "target": "production", "layers": ["overrides"], "digest": overrides.digest},
    )
    assert refused.status_code == 403
    assert not TenantFlag.objects.filter(environment=PRODUCTION).exists()
    toggles = environment_diff(tenant=acme, source="staging", target="production", layers=["owner_toggles"])
    done = client.post(
        promote_url(acme),
        {"source": "staging", "target": "production", "layers": ["owner_toggles"], "digest": toggles.digest},
    )
    assert done.status_code == 302
    assert OwnerToggle.objects.filter(environment=PRODUCTION, flag=theme).exists()


def test_deleting_an_environment_with_overrides_needs_the_flag_permission(acme):
    client = Client()
    client.force_login(staff_with("support", "tenants.view_tenant", "tenants.change_tenant", "tenants.view_flag"))
    flag_set_override(tenant=acme, flag=make_flag("beta"), enabled=True, environment="staging", actor=None)
    url = tenant_url(acme, "environments/")
    response = client.post(url, {"action": "delete", "environment": "staging", "confirm": "yes"})
    assert any("only they can remove them" in m for m in messages_of(response)), messages_of(response)
    assert Environment.objects.filter(key="staging").exists() and TenantFlag.objects.exists()
