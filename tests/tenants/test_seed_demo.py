"""seed_demo: the demo logins, tenants and API keys, idempotent, keys that work."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tenants.models import ApiKey, Membership, Plan, Tenant
from tenants.selectors import tenant_limits
from tenants.services.apikeys import apikey_revoke

pytestmark = pytest.mark.django_db


def seed(capsys):
    call_command("seed_demo", "--json")
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_seed_demo_creates_logins_and_is_idempotent(capsys, settings):
    settings.DEMO_PASSWORD = "another-demo-pass"
    call_command("seed_demo")
    text = capsys.readouterr().out
    assert "acme" in text and "aak_" in text
    result = seed(capsys)
    assert set(result["users"]) == {"admin", "acme-owner", "globex-owner"}
    User = get_user_model()
    assert User.objects.count() == 3
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("another-demo-pass")
    assert not User.objects.get(username="acme-owner").is_staff


def test_tenants_owners_plan_and_flags(capsys, settings):
    result = seed(capsys)
    assert set(result["api_keys"]) == {"acme", "globex"}
    plan = Plan.objects.get()
    assert plan.rate_limit_per_minute is None and plan.burst is None  # inherits RATE_LIMIT_*
    acme = Tenant.objects.get(slug="acme")
    assert tenant_limits(acme)[:2] == (settings.RESILIENCE_RATE_LIMIT_PER_MINUTE, settings.RESILIENCE_RATE_LIMIT_BURST)
    owners = set(Membership.objects.filter(role="owner").values_list("tenant__slug", "user__username"))
    assert owners == {("acme", "acme-owner"), ("globex", "globex-owner")}
    from tenants.models import Flag

    assert Flag.objects.filter(tenant_editable=True).count() >= 2 and Flag.objects.filter(risky=True).exists()


def test_second_run_keeps_rows_and_prints_working_keys(capsys):
    first = seed(capsys)
    second = seed(capsys)
    assert first["api_keys"] == second["api_keys"]
    assert ApiKey.objects.count() == 2 and Tenant.objects.count() == 2
    client = Client()
    for slug, secret in second["api_keys"].items():
        body = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
        assert body["tenant"]["slug"] == slug
    apikey_revoke(api_key=ApiKey.objects.get(tenant__slug="acme"), actor=None)
    third = seed(capsys)
    assert third["api_keys"]["acme"] != first["api_keys"]["acme"]
    assert third["api_keys"]["globex"] == first["api_keys"]["globex"]
    response = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {third['api_keys']['acme']}")
    assert response.status_code == 200


def test_rerun_keeps_password_hashes_so_demo_users_stay_signed_in(capsys, settings):
    seed(capsys)
    User = get_user_model()
    before = dict(User.objects.values_list("username", "password"))
    client = Client()
    client.force_login(User.objects.get(username="acme-owner"))
    assert client.get("/portal/t/acme/").status_code == 200
    seed(capsys)
    assert dict(User.objects.values_list("username", "password")) == before
    assert client.get("/portal/t/acme/").status_code == 200, "a re-seed must not sign the demo users out"


def test_rerun_with_a_new_demo_password_changes_only_the_password(capsys, settings):
    seed(capsys)
    User = get_user_model()
    settings.DEMO_PASSWORD = "a-new-demo-pass-456"
    result = seed(capsys)
    assert result["users"]["admin"]["password"] == "a-new-demo-pass-456"
    assert all(user.check_password("a-new-demo-pass-456") for user in User.objects.all())
