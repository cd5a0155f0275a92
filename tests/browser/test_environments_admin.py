"""Environments in the admin, in real Chromium: add staging, override in it, promote it to production, read it back.

Screenshots: test-artifacts/screenshots/test_staging_promoted_to_production-<step>.png.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tenants.models import PRODUCTION, Environment, TenantFlag
from tests.browser.conftest import login
from tests.tenants.factories import make_flag, make_tenant

PASSWORD = "a-long-test-password-1"
pytestmark = pytest.mark.django_db(transaction=True)


def test_staging_promoted_to_production(page, live_server, settings, screenshot, console_errors, redis_client):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    tenant = make_tenant("acme")
    flag = make_flag("beta")
    make_tenant("globex")
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url))
    login(page, live_server, "/admin/login/", "root", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/$"))
    tenant_page = f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/"

    # 1. Add staging from the tenant page's environments section.
    page.goto(tenant_page)
    assert page.locator('table.tenant-environments tr[data-environment="production"]').count() == 1
    page.click("a.environments-link")
    page.wait_for_url(re.compile(r"/environments/$"))
    page.fill("input[name=key]", "staging")
    page.fill("input[name=name]", "Staging")
    page.click(".environment-add input[type=submit]")
    page.wait_for_url(re.compile(r"/environments/$"))
    assert "Added environment staging." in page.inner_text("ul.messagelist")
    assert page.locator('#environments tr[data-environment="staging"]').count() == 1
    assert Environment.objects.filter(tenant=tenant, key="staging").exists()
    screenshot("environment-added")

    # 2. Override beta in staging with an inline row of the tenant page.
    page.goto(tenant_page)
    page.click("#flag_overrides-group .add-row a")
    page.select_option("select[name=flag_overrides-0-environment]", "staging")
    page.select_option("select[name=flag_overrides-0-flag]", str(flag.pk))
    page.check("input[name=flag_overrides-0-enabled]")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(rf"/tenant/{tenant.pk}/change/$"))
    assert "errornote" not in page.content()
    assert TenantFlag.objects.get(tenant=tenant).environment == "staging"
    staging_row = page.locator("#tenant-flag-staging-beta")
    assert "admin_override" in staging_row.inner_text()
    assert "default" in page.inner_text("#tenant-flag-beta")  # production untouched
    screenshot("override-in-staging")

    # 3. Promote staging to production: the diff first, then confirm.
    page.click("a.promote-link")
    page.wait_for_url(re.compile(r"/environments/promote/$"))
    page.select_option("select[name=source]", "staging")
    page.select_option("select[name=target]", PRODUCTION)
    page.check("input[name=layers][value=overrides]")
    page.click(".promote-pick input[type=submit]")
    page.wait_for_url(re.compile(r"source=staging"))
    row = page.locator('#promote-diff tr[data-flag="beta"]')
    assert row.locator("td.verb").inner_text().strip() == "add"
    assert row.locator("td.before").inner_text().strip() == "—"
    assert row.locator("td.after").inner_text().strip() == "on"
    assert not TenantFlag.objects.filter(environment=PRODUCTION).exists()
    screenshot("promote-diff")
    page.click(".promote-confirm input[type=submit]")
    page.wait_for_url(re.compile(rf"/tenant/{tenant.pk}/change/$"))
    assert "Promoted staging to production: 1 change." in page.inner_text("ul.messagelist")
    production_row = page.locator("#tenant-flag-beta")
    assert "admin_override" in production_row.inner_text()
    assert production_row.locator("td").nth(1).inner_text().strip() == "on"
    screenshot("promoted")

    # 4. The per-flag page: acme's staging row, and the environment filter.
    page.goto(f"{live_server.url}/admin/tenants/flag/{flag.pk}/tenants/")
    rows = page.locator("#flag-tenants tbody tr")
    assert [
        (rows.nth(i).get_attribute("data-tenant"), rows.nth(i).get_attribute("data-environment"))
        for i in range(rows.count())
    ] == [("acme", "production"), ("acme", "staging"), ("globex", "production")]
    page.select_option("select[name=environment]", "staging")
    page.click(".flag-tenants-filters button[type=submit]")
    page.wait_for_url(re.compile(r"environment=staging"))
    assert rows.count() == 1
    staging = page.locator('#flag-tenants tr[data-tenant="acme"][data-environment="staging"]')
    assert "admin_override" in staging.inner_text()
    screenshot("per-flag-staging")

    assert failed == []
    assert [e for e in console_errors if "status of 404" not in e] == []
