"""Repeated failed sign-ins meet a friendly 429 page in a real browser, with no CSP violations."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests.browser.conftest import login


@pytest.mark.django_db(transaction=True)
@override_settings(RESILIENCE_FORM_RATE_USERNAME="2/h", RESILIENCE_FORM_RATE_IP="100/h")
def test_throttled_sign_in_shows_the_429_page(page, live_server, screenshot, console_errors):
    get_user_model().objects.create_superuser("root", "root@example.com", "a-long-test-password-1")
    for _ in range(2):
        login(page, live_server, "/admin/login/", "root", "wrong-password")
        page.wait_for_selector(".errornote")
    with page.expect_response(lambda r: r.url.endswith("/admin/login/") and r.request.method == "POST") as answer:
        login(page, live_server, "/admin/login/", "root", "a-long-test-password-1")
    assert answer.value.status == 429
    assert page.inner_text("h1") == "Too many attempts"
    assert "for this account" in page.inner_text("main")
    assert "try again in" in page.inner_text(".hint")
    screenshot("throttled")
    # The browser logs the 429 itself (and a missing favicon); nothing may be refused by the CSP.
    assert [e for e in console_errors if "Content Security Policy" in e or "Refused" in e] == []
