"""Tenant admin pages in a real browser: usage chart renders, an issued API key is shown once, no CSP errors."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.keys import usage_key
from tenants.models import ApiKey
from tests.browser.conftest import login
from tests.tenants.factories import make_flag, make_tenant

PASSWORD = "a-long-test-password-1"


@pytest.mark.django_db(transaction=True)
def test_tenant_page_chart_and_key_issue(page, live_server, screenshot, console_errors, redis_client):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    tenant = make_tenant("acme")
    make_flag("beta")
    redis_client.hset(usage_key(tenant.slug, tenant.pk, timezone.now().strftime("%Y%m%d")), "requests", 12)
    failed = []
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url))
    login(page, live_server, "/admin/login/", "root", PASSWORD)

    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    chart = page.locator("#usage-chart svg.usage-svg")
    chart.wait_for()
    assert chart.bounding_box()["width"] > 100
    screenshot("tenant-change-usage-chart")

    page.goto(f"{live_server.url}/admin/tenants/apikey/add/")
    page.select_option("select[name=tenant]", str(tenant.pk))
    page.fill("input[name=name]", "replica")
    page.click("input[name=_save]")
    secret = page.inner_text("#api-key-secret").strip()
    assert re.fullmatch(r"aak_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", secret)
    screenshot("apikey-issued-once")
    page.goto(f"{live_server.url}/admin/tenants/apikey/{ApiKey.objects.get().pk}/change/")
    assert secret not in page.content()
    # Chromium asks for /favicon.ico on its own; every other resource must load and no CSP error may occur.
    assert failed == []
    assert [e for e in console_errors if "status of 404" not in e] == []
