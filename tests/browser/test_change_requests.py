"""Change requests in real Chromium: one staff user schedules a guarded override, another approves, it applies.

Screenshots: test-artifacts/screenshots/test_a_guarded_override_needs_another_staff_users_approval-<step>.png.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from changes.models import ChangeRequest
from changes.services import changes_apply_due
from tenants.models import TenantFlag
from tenants.services.flags import flag_update
from tests.browser.conftest import ARTIFACTS, login
from tests.tenants.factories import make_flag, make_tenant

PASSWORD = "a-long-test-password-1"
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_guarded_override_needs_another_staff_users_approval(
    browser, page, live_server, settings, screenshot, console_errors, redis_client
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = get_user_model().objects
    users.create_superuser("alice", "alice@example.com", PASSWORD)
    users.create_superuser("bob", "bob@example.com", PASSWORD)
    tenant = make_tenant("acme")
    flag_update(flag=make_flag("payments"), requires_approval=True, actor=None)
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url))

    # 1. Alice schedules "payments on for acme" from the tenant page, to apply in ten minutes.
    login(page, live_server, "/admin/login/", "alice", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    page.click("a.schedule-change")
    page.wait_for_url(re.compile(r"/admin/changes/changerequest/add/\?operation=flag.set_override"))
    assert page.input_value("select[name=tenant]") == "acme"
    page.select_option("select[name=flag]", "payments")
    page.select_option("select[name=enabled]", "true")
    apply_at = timezone.localtime(timezone.now() + timedelta(minutes=10)).replace(microsecond=0)
    page.fill("input[name=apply_at_0]", apply_at.strftime("%Y-%m-%d"))
    page.fill("input[name=apply_at_1]", apply_at.strftime("%H:%M:%S"))
    page.fill("[name=reason]", "launch payments for acme")
    page.click("input[name=_save]")
    change = ChangeRequest.objects.get()
    page.wait_for_url(re.compile(rf"/admin/changes/changerequest/{change.pk}/change/$"))
    assert f"Change request #{change.pk}: pending approval." in page.inner_text("ul.messagelist")
    assert change.state == ChangeRequest.State.PENDING_APPROVAL and change.author.username == "alice"
    # Her own request offers her no Approve button.
    steps = [text.strip() for text in page.locator("form.change-step button").all_inner_texts()]
    assert "Approve" not in steps and "Cancel" in steps
    screenshot("alice-request")

    # 2. It is listed; approving it from the list anyway is refused with a message.
    page.goto(f"{live_server.url}/admin/changes/changerequest/")
    row = page.locator("#result_list tbody tr", has_text="payments")
    assert row.count() == 1 and "Pending approval" in row.inner_text()
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.wait_for_url(re.compile(r"/admin/changes/changerequest/$"))
    assert "another staff user must approve it" in page.inner_text("ul.messagelist")
    assert ChangeRequest.objects.get().state == ChangeRequest.State.PENDING_APPROVAL
    screenshot("self-approval-refused")

    # 3. Bob approves it on its page: approved, waiting for its time.
    bob = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        bob_page = bob.new_page()
        bob_page.on(
            "response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url)
        )
        login(bob_page, live_server, "/admin/login/", "bob", PASSWORD)
        bob_page.wait_for_url(re.compile(r"/admin/$"))
        bob_page.goto(f"{live_server.url}/admin/changes/changerequest/{change.pk}/change/")
        bob_page.click("form.change-step button:has-text('Approve')")
        bob_page.wait_for_url(re.compile(r"/admin/changes/changerequest/"))
        assert "Approved 1 change request(s)." in bob_page.inner_text("ul.messagelist")
        change.refresh_from_db()
        assert change.state == ChangeRequest.State.APPROVED and change.approved_by.username == "bob"
        assert not TenantFlag.objects.exists()  # not due yet

        # 4. When it is due, the maintenance round applies it (as apply_changes does, at that time).
        report = changes_apply_due(now=change.apply_at + timedelta(seconds=1))
        assert report.applied == 1
        bob_page.goto(f"{live_server.url}/admin/changes/changerequest/{change.pk}/change/")
        assert "Applied" in bob_page.inner_text(".field-state")
        assert "applied" in bob_page.inner_text(".field-outcome")
        assert "approved by bob" in bob_page.inner_text(".field-approval")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob_page.screenshot(path=str(ARTIFACTS / "change-requests-bob-sees-applied.png"), full_page=True)
    finally:
        bob.close()
    override = TenantFlag.objects.get(tenant=tenant)
    assert override.enabled is True and override.flag.key == "payments"

    # 5. Alice sees it applied on the list too.
    page.goto(f"{live_server.url}/admin/changes/changerequest/?state__exact=applied")
    assert page.locator("#result_list tbody tr", has_text="payments").count() == 1
    screenshot("applied-list")
    assert failed == []
    assert [e for e in console_errors if "status of 404" not in e] == []
