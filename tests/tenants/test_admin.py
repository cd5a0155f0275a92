"""The admin writes through the services (so every change is audited) and shows secrets once."""

import re

import pytest
from django.test import Client

from agentapi_admin.redis_process import free_port
from audit.models import AuditEvent
from tenants.models import ApiKey, Flag, Membership, Plan, Tenant, TenantFlag
from tenants.services.apikeys import KEY_PATTERN, apikey_hash
from tenants.services.flags import flag_set_override

from .factories import make_flag, make_plan, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    staff = make_staff("root")
    client = Client()
    client.force_login(staff)
    return client


def actions():
    # Sign-ins are audited too (tenants/receivers.py); these tests are about the admin's writes.
    rows = AuditEvent.objects.exclude(action__startswith="auth.").order_by("id")
    return list(rows.values_list("action", "actor_label"))


def test_create_tenant_with_owner_and_override_is_audited(staff_client):
    plan = make_plan("gold")
    owner = make_user("owner")
    flag = make_flag("beta")
    response = staff_client.post(
        "/admin/tenants/tenant/add/",
        {
            "slug": "acme",
            "name": "Acme",
            "plan": plan.pk,
            "settings": '{"max_concurrent_agents": 3}',
            "upstream_url": "http://agent.acme.test:3284",
            "new_upstream_credentials": "tok-1",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": owner.pk,
            "memberships-0-role": "owner",
            "flag_overrides-TOTAL_FORMS": "1",
            "flag_overrides-INITIAL_FORMS": "0",
            "flag_overrides-0-flag": flag.pk,
            "flag_overrides-0-enabled": "on",
            "flag_overrides-0-rollout_percent": "40",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    tenant = Tenant.objects.get(slug="acme")
    assert tenant.upstream_credentials.startswith("v1.")
    assert Membership.objects.get(tenant=tenant).role == "owner"
    assert TenantFlag.objects.get(tenant=tenant).rollout_percent == 40
    mine = [a for a, actor in actions() if actor == "root"]
    assert mine == ["tenant.create", "tenant.set_upstream_credentials", "membership.add", "flag.set_override"]


def test_bad_settings_are_a_form_error(staff_client):
    tenant = make_tenant("acme")
    response = staff_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": "Acme",
            "plan": tenant.plan_id,
            "settings": '{"max_concurrent_agents": 5000}',
            "upstream_url": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "flag_overrides-TOTAL_FORMS": "0",
            "flag_overrides-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "settings.max_concurrent_agents" in response.content.decode()
    assert not AuditEvent.objects.filter(action="tenant.update").exists()


def test_the_last_owner_cannot_be_removed_in_the_admin(staff_client):
    owner = make_user("owner")
    tenant = make_tenant("acme", owner=owner)
    membership = Membership.objects.get()
    response = staff_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": "Acme",
            "plan": tenant.plan_id,
            "settings": "{}",
            "upstream_url": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-tenant": tenant.pk,
            "memberships-0-user": owner.pk,
            "memberships-0-role": "owner",
            "memberships-0-DELETE": "on",
            "flag_overrides-TOTAL_FORMS": "0",
            "flag_overrides-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_suspend_and_resume_actions_go_through_services(staff_client):
    tenant = make_tenant("acme")
    no_reason = staff_client.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant.pk], "reason": ""}, follow=True
    )
    assert "Give a reason" in no_reason.content.decode()
    assert Tenant.objects.get().status == "trial"
    staff_client.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant.pk], "reason": "abuse"}
    )
    assert Tenant.objects.get().status == "suspended"
    assert AuditEvent.objects.get(action="tenant.suspend").reason == "abuse"
    staff_client.post("/admin/tenants/tenant/", {"action": "resume", "_selected_action": [tenant.pk]})
    assert Tenant.objects.get().status == "trial"  # resumed to the state it was suspended from


def test_issuing_a_key_shows_the_secret_once(staff_client):
    tenant = make_tenant("acme")
    response = staff_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.pk, "name": "replica", "scopes": ["config:read", "flags:read"], "expires_at": ""},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = re.search(r'id="api-key-secret"[^>]*>([^<]+)<', response.content.decode()).group(1)
    assert KEY_PATTERN.match(secret)
    api_key = ApiKey.objects.get()
    assert api_key.secret_hash == apikey_hash(secret)
    detail = staff_client.get(f"/admin/tenants/apikey/{api_key.pk}/change/").content.decode()
    assert api_key.prefix in detail and secret not in detail
    assert secret not in staff_client.get("/admin/tenants/apikey/").content.decode()
    staff_client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    assert ApiKey.objects.get().revoked_at is not None
    assert [a for a, _ in actions()][-2:] == ["apikey.issue", "apikey.revoke"]


def test_flag_and_plan_admin_write_through_services(staff_client):
    staff_client.post(
        "/admin/tenants/flag/add/", {"key": "beta", "description": "Beta", "default": "on", "tenant_editable": "on"}
    )
    flag = Flag.objects.get()
    staff_client.post(
        f"/admin/tenants/flag/{flag.pk}/change/",
        {"description": "Beta 2", "default": "on", "tenant_editable": "on", "archived": "on"},
    )
    assert Flag.objects.get().archived
    staff_client.post(
        "/admin/tenants/plan/add/",
        {
            "code": "gold",
            "name": "Gold",
            "rate_limit_per_minute": "100",
            "burst": "",
            "daily_quota": "",
            "max_environments": "2",
            "default_flags": '{"beta": true}',
        },
    )
    assert Plan.objects.get().default_flags == {"beta": True}
    assert Plan.objects.get().max_environments == 2
    bad = staff_client.post("/admin/tenants/plan/add/", {"code": "x", "name": "X", "default_flags": '{"nope": true}'})
    assert "Unknown flags: nope" in bad.content.decode()
    assert [a for a, _ in actions()] == ["flag.create", "flag.update", "plan.create"]


def test_audit_log_is_read_only_with_a_readable_diff(staff_client):
    tenant = make_tenant("acme")
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, rollout_percent=10, actor=None)
    event = AuditEvent.objects.get(action="flag.set_override")
    page = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and 'class="audit-diff"' in html and "rollout_percent" in html
    assert 'name="_save"' not in html
    assert staff_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert staff_client.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403


def test_the_audit_log_s_old_admin_address_redirects(staff_client):
    old = staff_client.get("/admin/tenants/auditevent/?action=flag.create")
    assert old.status_code == 301 and old["Location"] == "/admin/audit/auditevent/?action=flag.create"
    assert staff_client.get("/admin/tenants/auditevent/7/change/")["Location"] == "/admin/audit/auditevent/7/change/"


def test_tenant_page_shows_the_usage_chart(staff_client, redis_client):
    from django.utils import timezone

    from tenants.keys import usage_key

    tenant = make_tenant("acme")
    redis_client.hset(usage_key(tenant.slug, tenant.pk, timezone.now().strftime("%Y%m%d")), "requests", 42)
    redis_client.hset(usage_key(tenant.slug, tenant.pk, timezone.now().strftime("%Y%m%d")), "rate_limited", 8)
    html = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert '<svg class="usage-svg"' in html and ": 42 served, 8 refused: rate limit</title>" in html
    assert "system tenant.create</a>" in html
    assert "cdn" not in html.lower()
    listing = staff_client.get("/admin/tenants/tenant/?status__exact=trial&q=acm").content.decode()
    assert "acme" in listing


def test_test_upstream_action_probes_through_the_tenant_breaker(staff_client, upstream_url):
    up = make_tenant("acme")
    Tenant.objects.filter(pk=up.pk).update(upstream_url=upstream_url)
    down = make_tenant("gone")
    Tenant.objects.filter(pk=down.pk).update(upstream_url=f"http://127.0.0.1:{free_port()}")
    page = staff_client.post(
        "/admin/tenants/tenant/",
        {"action": "test_upstream", "_selected_action": [up.pk, down.pk]},
        follow=True,
    ).content.decode()
    assert "Upstream of acme: HTTP 200 in" in page and "breaker upstream.acme closed" in page
    assert "Upstream of gone failed:" in page and "breaker upstream.gone" in page
