"""The admin renders in a real browser and a staff user can log in."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import login


@pytest.mark.django_db(transaction=True)
def test_staff_logs_in_to_admin(page, live_server, screenshot):
    get_user_model().objects.create_superuser("root", "root@example.com", "a-long-test-password-1")
    login(page, live_server, "/admin/login/", "root", "a-long-test-password-1")
    page.wait_for_selector("#site-name")
    assert "agentapi-admin" in page.inner_text("#site-name")
    assert page.url.endswith("/admin/")
    screenshot("admin-index")


@pytest.mark.django_db(transaction=True)
def test_admin_pages_raise_no_csp_violations(page, live_server, console_errors):
    get_user_model().objects.create_superuser("root", "root@example.com", "a-long-test-password-1")
    login(page, live_server, "/admin/login/", "root", "a-long-test-password-1")
    for path in ["/admin/", "/admin/auth/user/", "/admin/auth/user/add/"]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert console_errors == []
