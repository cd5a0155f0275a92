"""The tenant portal in real Chromium: an owner's day, a member's view, and every page photographed."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest
from django.utils import timezone

from resilience.breakers.process import redis_breaker
from resilience.connection import get_redis
from tenants.cache import usage_key
from tenants.models import TenantFlag, UsageDaily
from tests.browser.conftest import ARTIFACTS, login
from tests.portal.conftest import PASSWORD, build_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    redis_breaker.reset()
    return build_world()


def bootstrap(live_server, secret: str) -> dict:
    """Call the service API over HTTP as a replica would."""
    url = f"{live_server.url}/api/v1/bootstrap"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})  # noqa: S310 - live server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own live server
        return json.loads(response.read())


def row(page, key):
    return page.locator(f"#flag-{key}")


def test_owner_toggles_a_flag_and_the_api_follows(world, page, live_server, screenshot, console_errors):
    assert bootstrap(live_server, world.a_secret)["flags"]["new-ui"]["enabled"] is False

    page.goto(f"{live_server.url}/portal/login/")
    screenshot("login")
    login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
    page.wait_for_url("**/portal/t/acme/")
    screenshot("overview")

    page.get_by_role("navigation", name="Acme sections").get_by_role("link", name="Features").click()
    page.wait_for_url("**/portal/t/acme/features/")
    assert row(page, "new-ui").locator(".pill").inner_text() == "Off"
    screenshot("features-before")

    row(page, "new-ui").get_by_role("button", name="Turn on new-ui").click()
    page.wait_for_url("**/portal/t/acme/features/#flag-new-ui")
    assert row(page, "new-ui").locator(".pill").inner_text() == "On"
    assert "Your team" in row(page, "new-ui").inner_text()
    assert "“new-ui” is now on" in page.locator(".messages").inner_text()
    history = page.locator("ol.history li").first.inner_text()
    assert "a-owner" in history and "switched" in history and "new-ui" in history
    screenshot("features-after-toggle")

    # The service API sees the change on its very next request; the other tenant does not.
    flag = bootstrap(live_server, world.a_secret)["flags"]["new-ui"]
    assert flag == {**flag, "enabled": True, "reason": "owner_toggle"}
    assert bootstrap(live_server, world.b_secret)["flags"]["new-ui"]["enabled"] is False
    assert console_errors == []


def test_locked_flag_has_no_toggle_and_a_forged_post_is_refused(world, page, live_server, screenshot):
    login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
    page.wait_for_url("**/portal/t/acme/")
    page.goto(f"{live_server.url}/portal/t/acme/features/")
    locked = row(page, "billing-v2")
    assert locked.locator("form, button").count() == 0
    assert "Managed by the platform team" in locked.inner_text()

    # Forge the form the page does not offer, with a valid CSRF token taken from the page.
    page.evaluate(
        """() => {
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const form = document.createElement('form');
            form.method = 'post';
            form.action = '/portal/t/acme/features/billing-v2/';
            for (const [name, value] of [['csrfmiddlewaretoken', token], ['enabled', 'true'], ['confirm', 'on']]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }"""
    )
    page.wait_for_url("**/features/billing-v2/")
    assert "403" in page.locator(".error-code").inner_text()
    assert "managed by the platform team" in page.locator("main").inner_text()
    screenshot("forged-toggle-refused")
    assert not TenantFlag.objects.filter(tenant=world.a, flag=world.locked).exists()


def test_risky_flag_is_confirmed_and_works_without_javascript(world, browser, live_server, request):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, live_server, "/portal/login/", "a-admin", PASSWORD)
        page.wait_for_url("**/portal/t/acme/")
        page.goto(f"{live_server.url}/portal/t/acme/features/")
        row(page, "auto-merge").get_by_role("button", name="Turn on auto-merge").click()
        page.wait_for_url("**/features/auto-merge/")
        assert "marked risky" in page.locator("main").inner_text()
        page.screenshot(path=str(_artifact(request, "risky-confirm")), full_page=True)
        page.get_by_role("button", name="Confirm change").click()
        page.wait_for_url("**/portal/t/acme/features/#flag-auto-merge")
        assert row(page, "auto-merge").locator(".pill").inner_text() == "On"
    finally:
        context.close()


def _artifact(request, label):
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{request.node.name}-{label}.png"


def test_keys_members_usage_and_account_pages(world, page, live_server, screenshot, console_errors):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    today = timezone.now().date()
    for days_ago in range(1, 30):
        UsageDaily.objects.create(
            tenant=world.a, day=today - dt.timedelta(days=days_ago), metric="requests", count=(days_ago * 37) % 400 + 20
        )
    get_redis().hset(usage_key(world.a.pk, today.strftime("%Y%m%d")), "requests", 128)

    login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
    page.wait_for_url("**/portal/t/acme/")

    # API keys: create, see the secret once, copy it, revoke.
    page.goto(f"{live_server.url}/portal/t/acme/keys/")
    screenshot("keys")
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Create key").click()
    assert "Give the key a name" in page.locator("main").inner_text()
    screenshot("keys-form-error")
    page.get_by_label("Name").fill("staging replica")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("aak_")
    copy = page.get_by_role("button", name="Copy")
    assert copy.is_visible()  # portal.js revealed it
    copy.click()
    page.wait_for_function("document.querySelector('[data-copy-status]').textContent.length > 0")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot("keys-created")
    assert bootstrap(live_server, secret)["tenant"]["slug"] == "acme"
    page.goto(f"{live_server.url}/portal/t/acme/keys/")
    assert secret not in page.content()
    page.get_by_role("link", name="Revoke staging replica").click()
    screenshot("key-revoke-confirm")
    page.get_by_role("button", name="Revoke key").click()
    assert "is revoked" in page.locator(".messages").inner_text()

    # Members: invite by email (the link is shown once), change a role, the last owner is protected.
    page.goto(f"{live_server.url}/portal/t/acme/members/")
    page.get_by_label("Username or email").fill("OUTSIDER@example.test")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Invite", exact=True).click()
    assert "Invitation created for OUTSIDER@example.test" in page.locator("main").inner_text()
    assert "/portal/invitations/" in page.get_by_label("Invitation link").input_value()
    screenshot("members")
    page.get_by_label("Role of a-owner").select_option("member")
    page.get_by_role("button", name="Change role of a-owner").click()
    assert "at least one owner" in page.locator(".field-errors").inner_text()
    screenshot("member-role-last-owner")
    page.goto(f"{live_server.url}/portal/t/acme/members/{world.a_member_membership.pk}/remove/")
    screenshot("member-remove-confirm")

    page.goto(f"{live_server.url}/portal/t/acme/usage/")
    assert page.locator("svg rect.bar").count() == 30
    page.get_by_text("Show the numbers").click()
    screenshot("usage")

    page.goto(f"{live_server.url}/portal/account/")
    screenshot("account")
    # The two form errors above answer 400 on purpose; anything else (CSP, JS) is a failure.
    assert [error for error in console_errors if "status of 400" not in error] == []
    assert len(console_errors) == 2
    page.get_by_role("button", name="Log out everywhere").click()
    page.wait_for_url("**/portal/login/")
    assert "Logged out everywhere" in page.locator(".messages").inner_text()
    page.goto(f"{live_server.url}/portal/t/acme/")
    assert "/portal/login/" in page.url


def test_member_view_error_pages_and_small_screens(world, page, live_server, screenshot, console_errors):
    from tenants.services.memberships import membership_add

    membership_add(tenant=world.b, user=world.a_member, role="member", actor=None)
    login(page, live_server, "/portal/login/", "a-member", PASSWORD)
    page.wait_for_url("**/portal/")
    screenshot("tenant-switcher")
    page.locator("details.switcher summary").click()
    screenshot("tenant-switcher-open")
    assert page.locator("details.switcher").get_attribute("open") is not None
    page.keyboard.press("Escape")  # portal.js closes the menu and returns focus to its button
    assert page.locator("details.switcher").get_attribute("open") is None
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    page.goto(f"{live_server.url}/portal/t/acme/features/")
    assert page.get_by_role("button", name="Turn on new-ui").count() == 0
    screenshot("features-as-member")
    page.goto(f"{live_server.url}/portal/t/acme/keys/{world.a_key.pk}/revoke/")
    assert page.locator(".error-code").inner_text() == "403"
    screenshot("403")
    page.goto(f"{live_server.url}/portal/t/initech/")
    assert page.locator(".error-code").inner_text() == "404"
    screenshot("404")
    page.set_viewport_size({"width": 390, "height": 844})
    for name in ("features", "keys", "members", "usage"):
        page.goto(f"{live_server.url}/portal/t/acme/{name}/")
        screenshot(f"mobile-{name}")
        # Nothing may force the page wider than the phone (wide tables scroll inside their frame).
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    # The 403 and 404 pages above answer so on purpose; anything else (CSP, JS) is a failure.
    assert [error for error in console_errors if "status of 403" not in error and "status of 404" not in error] == []


def test_keyboard_users_skip_to_content_and_see_focus(world, page, live_server, screenshot):
    login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
    page.wait_for_url("**/portal/t/acme/")
    page.goto(f"{live_server.url}/portal/t/acme/features/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # revealed on focus
    screenshot("skip-link-focused")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab lands inside the content, on a control with a visible focus outline.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def visible_inside(page, inner: str, outer: str) -> dict:
    """Return the boxes of `inner` and of the scroll container `outer`, and whether `outer` scrolls sideways."""
    return page.evaluate(
        """([inner, outer]) => {
            const a = document.querySelector(inner).getBoundingClientRect();
            const wrap = document.querySelector(outer);
            const b = wrap.getBoundingClientRect();
            return {inner_right: a.right, inner_left: a.left, outer_right: b.right, outer_left: b.left,
                    scrolls: wrap.scrollWidth > wrap.clientWidth + 1,
                    page_scrolls: document.documentElement.scrollWidth > window.innerWidth + 1};
        }""",
        [inner, outer],
    )


@pytest.mark.parametrize("width", [1366, 1280, 390])
def test_members_remove_button_is_not_clipped(world, browser, live_server, width, request):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
        page.wait_for_url("**/portal/t/acme/")
        page.goto(f"{live_server.url}/portal/t/acme/members/")
        remove = 'section[aria-labelledby="members-title"] tbody tr:last-child a.button'
        box = visible_inside(page, remove, 'section[aria-labelledby="members-title"] .table-wrap')
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"portal-members-{width}px.png"), full_page=True)
        assert not box["scrolls"], box
        assert not box["page_scrolls"], box
        assert box["outer_left"] <= box["inner_left"] and box["inner_right"] <= box["outer_right"], box
        assert page.locator(remove).is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_the_front_door_offers_both_sign_ins(browser, live_server, width, console_errors):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"front-door-{width}px.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_role("link", name="Tenant portal").click()
        page.wait_for_url("**/portal/login/**")
        page.go_back()
        page.get_by_role("link", name="Admin").click()
        page.wait_for_url("**/admin/login/**")
        favicon = page.request.get(f"{live_server.url}/favicon.ico")
        assert favicon.status == 200 and favicon.headers["content-type"] == "image/x-icon"
    finally:
        context.close()
