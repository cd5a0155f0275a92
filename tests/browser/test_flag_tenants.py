"""The per-flag page in real Chromium, at 1366 px and on a 390 px phone: reached from the flag, filtered, paged.

Screenshots: test-artifacts/screenshots/flag-tenants-<viewport>-<step>.png.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tenants.services.flags import flag_set_override
from tests.browser.conftest import ARTIFACTS, login
from tests.tenants.factories import make_flag, make_plan, make_tenant

PASSWORD = "a-long-test-password-1"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
}
pytestmark = pytest.mark.django_db(transaction=True)


def shoot(page, viewport: str, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"flag-tenants-{viewport}-{step}.png"), full_page=True)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_per_flag_page_from_the_flag_filters_and_pages(browser, live_server, settings, viewport, redis_client):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    flag = make_flag(
        "checkout-theme",
        kind="string",
        default=True,
        default_value="light",
        variants=[{"key": "dark", "value": "dark"}],
    )
    plan = make_plan("team")
    tenants = [make_tenant(f"tenant-with-a-long-name-{n:02d}", plan=plan) for n in range(55)]
    flag_set_override(tenant=tenants[3], flag=flag, enabled=True, variant="dark", actor=None)

    context = browser.new_context(**VIEWPORTS[viewport])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url))
    try:
        login(page, live_server, "/admin/login/", "root", PASSWORD)
        page.wait_for_url(re.compile(r"/admin/$"))
        page.goto(f"{live_server.url}/admin/tenants/flag/{flag.pk}/change/")
        page.click("a.flag-tenants-link")
        page.wait_for_url(re.compile(rf"/admin/tenants/flag/{flag.pk}/tenants/$"))
        rows = page.locator("#flag-tenants tbody tr")
        assert rows.count() == 50
        assert page.locator("#flag-tenants thead th.environment").text_content().strip() == "Environment"
        assert page.locator("#flag-tenants tbody td.environment").first.text_content().strip() == "production"
        assert "55 tenants" in page.inner_text(".paginator")
        shoot(page, viewport, "all")

        # No sideways scroll of the page itself: the table scrolls in its own box.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than the viewport"

        page.click("a[rel=next]")
        page.wait_for_url(re.compile(r"p=2"))
        assert rows.count() == 5
        shoot(page, viewport, "page-2")

        page.select_option("select[name=reason]", "admin_override")
        page.click(".flag-tenants-filters button[type=submit]")
        page.wait_for_url(re.compile(r"reason=admin_override"))
        assert rows.count() == 1
        row = page.locator('#flag-tenants tr[data-tenant="tenant-with-a-long-name-03"]')
        assert "variant dark" in row.inner_text() and "admin_override" in row.inner_text()
        assert page.inner_text(".paginator").strip().startswith("1 row (tenant")
        csv_href = page.get_attribute("a.flag-tenants-csv", "href")
        assert "reason=admin_override" in csv_href and "format=csv" in csv_href
        shoot(page, viewport, "filtered")

        page.fill("input[name=value]", "no-such-value")
        page.click(".flag-tenants-filters button[type=submit]")
        assert page.locator(".flag-tenants-empty").is_visible()
        assert failed == [] and errors == []
    finally:
        context.close()
