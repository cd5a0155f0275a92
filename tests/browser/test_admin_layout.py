"""The admin as people use it, in real Chromium at 1366 px (light and dark) and on a 390 px phone.

Every check photographs the page: test-artifacts/screenshots/admin-layout-<test>-<viewport>.png.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.keys import usage_key
from tenants.models import UsageDaily
from tests.browser.conftest import ARTIFACTS, login
from tests.tenants.factories import make_key, make_tenant

PASSWORD = "a-long-test-password-1"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "desktop-dark": {"viewport": {"width": 1366, "height": 900}, "color_scheme": "dark"},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
}
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def signed_in(browser, live_server, root, request):
    """Yield open(viewport) -> page, signed in as root; each page is closed at the end."""
    contexts = []

    def open_page(viewport: str):
        context = browser.new_context(**VIEWPORTS[viewport])
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        login(page, live_server, "/admin/login/", "root", PASSWORD)
        page.wait_for_url(re.compile(r"/admin/$"))
        return page

    yield open_page
    for context in contexts:
        context.close()


def shoot(page, request, viewport: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"admin-layout-{request.node.originalname}-{viewport}")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed CSS colours."""

    def luminance(css):
        channels = [c / 255 for c in _rgb(css)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def background_of(page, selector: str) -> str:
    """Return the first non-transparent background colour at or above the element."""
    return page.evaluate(
        """(selector) => {
            for (let el = document.querySelector(selector); el; el = el.parentElement) {
                const bg = getComputedStyle(el).backgroundColor;
                if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
            }
            return getComputedStyle(document.documentElement).backgroundColor || 'rgb(255, 255, 255)';
        }""",
        selector,
    )


# ------------------------------------------------------------------------ usage chart
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_usage_chart_shows_both_series_fits_and_keeps_the_last_label(signed_in, live_server, request, viewport):
    tenant = make_tenant("acme")
    today = timezone.now().date()
    for back in range(1, 30):
        day = today - dt.timedelta(days=back)
        UsageDaily.objects.create(tenant=tenant, day=day, metric="requests", count=40 + back)
        UsageDaily.objects.create(tenant=tenant, day=day, metric="rate_limited", count=back % 9)
    from resilience.connection import get_redis

    get_redis().hset(
        usage_key(tenant.slug, tenant.pk, today.strftime("%Y%m%d")), mapping={"requests": 12, "rate_limited": 30}
    )
    page = signed_in(viewport)
    width = VIEWPORTS[viewport]["viewport"]["width"]

    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    figure = page.locator("#usage-chart")
    figure.scroll_into_view_if_needed()
    box = figure.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    assert page.locator("#usage-chart .usage-legend").inner_text().count("Refused: rate limit") == 1
    assert page.locator("#usage-chart rect.s1").count() >= 20  # rate_limited is drawn, not only requests

    # Today's stack is on screen and as wide as its neighbours; its label is the last one, whole.
    today_box = page.locator(f'#usage-chart g[data-day="{today:%Y-%m-%d}"]').bounding_box()
    assert today_box["width"] >= 4 and today_box["x"] + today_box["width"] <= width, today_box
    last_label = page.locator("#usage-chart .usage-x span").last
    assert last_label.inner_text() == f"{today:%b} {today.day}"
    label_box = last_label.bounding_box()
    assert label_box["x"] >= box["x"] and label_box["x"] + label_box["width"] <= box["x"] + box["width"] + 0.5
    # Axis text keeps a readable size on a phone (HTML, not scaled SVG text).
    assert float(last_label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 11

    backdrop = background_of(page, "#usage-chart")
    for css in ("s0", "s1"):
        fill = page.locator(f"#usage-chart rect.{css}").first.evaluate("e => getComputedStyle(e).fill")
        assert contrast(fill, backdrop) >= 3, (viewport, css, fill, backdrop)
    if viewport == "desktop-dark":
        assert contrast(backdrop, "rgb(255, 255, 255)") > 10, backdrop  # really the dark theme
    assert not [e for e in page.errors if "Content Security Policy" in e]
    shoot(page, request, viewport)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_portal_usage_uses_the_same_chart_and_fits_a_phone(browser, live_server, request, viewport, settings):
    from tests.portal.conftest import PASSWORD as OWNER_PASSWORD
    from tests.portal.conftest import build_world

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = build_world()
    today = timezone.now().date()
    UsageDaily.objects.create(tenant=world.a, day=today - dt.timedelta(days=2), metric="requests", count=11)
    UsageDaily.objects.create(tenant=world.a, day=today - dt.timedelta(days=2), metric="rate_limited", count=79)
    context = browser.new_context(**VIEWPORTS[viewport])
    try:
        page = context.new_page()
        login(page, live_server, "/portal/login/", "a-owner", OWNER_PASSWORD)
        page.wait_for_url("**/portal/t/acme/")
        page.goto(f"{live_server.url}/portal/t/acme/usage/")
        figure = page.locator("#usage-chart")
        figure.scroll_into_view_if_needed()
        width = VIEWPORTS[viewport]["viewport"]["width"]
        box = figure.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
        assert "Refused: rate limit: 79" in page.locator("#usage-chart .usage-legend").inner_text()
        today_box = page.locator(f'#usage-chart g[data-day="{today:%Y-%m-%d}"]').bounding_box()
        assert today_box is not None and today_box["x"] + today_box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shoot(page, request, viewport)
    finally:
        context.close()


# ------------------------------------------------------------------------ changelists
def _keys_and_audit():
    from audit.services import audit_record
    from tenants.models import ApiKey
    from tenants.services.apikeys import apikey_revoke

    tenant = make_tenant("acme-corporation-international")
    for n in range(3):
        api_key, _secret = make_key(tenant, name=f"replica-eu-west-{n}-production", expires_at=None)
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    apikey_revoke(api_key=api_key, actor=None)
    for n in range(5):
        audit_record(
            actor=None,
            action="ratelimit.reset_matching",
            tenant=tenant,
            object_type="ratelimit.pattern",
            object_id=f"agentapi:rl:ip:2001:db8:85a3::8a2e:370:{n:04x}"[:64],
            ip=f"2001:db8:85a3::8a2e:370:{n}",
        )


@pytest.mark.parametrize("viewport", ["desktop", "desktop-dark"])
@pytest.mark.parametrize(
    ("path", "column", "sample"),
    [("/admin/tenants/apikey/", "column-last_used", None), ("/admin/audit/auditevent/", "column-ip", "2001:")],
)
def test_last_column_is_not_cut_at_1366(signed_in, live_server, request, viewport, path, column, sample):
    _keys_and_audit()
    page = signed_in(viewport)
    page.goto(f"{live_server.url}{path}")
    results = page.locator("#changelist .results")
    overflow = results.evaluate("e => e.scrollWidth - e.clientWidth")
    assert overflow <= 0, f"{path}: the table is {overflow} px wider than its box at 1366 px"
    header = page.locator(f"th.{column}").bounding_box()
    assert header["x"] + header["width"] <= 1366
    if sample:
        cell = page.locator(f"td.field-{column.removeprefix('column-')}", has_text=sample).first
        assert cell.bounding_box()["x"] + cell.bounding_box()["width"] <= 1366
    shoot(page, request, f"{path.strip('/').replace('/', '-')}-{viewport}")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_api_key_scopes_are_labels_not_a_json_list(signed_in, live_server, request, viewport):
    _keys_and_audit()
    page = signed_in(viewport)
    page.goto(f"{live_server.url}/admin/tenants/apikey/")
    cell = page.locator("td.field-scope_labels").first.inner_text()
    assert "[" not in cell and "config:read" not in cell
    assert "Read config" in cell and "Evaluate flags" in cell
    page.locator("th.field-prefix a").first.click()
    assert "Read config" in page.locator(".field-scope_labels").inner_text()
    shoot(page, request, viewport)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_usage_is_named_daily_usage(signed_in, live_server, request, viewport):
    page = signed_in(viewport)
    body = page.locator("#content-main").inner_text()
    assert "Usage dailys" not in body and "Daily usage" in body
    page.goto(f"{live_server.url}/admin/tenants/usagedaily/")
    assert page.locator("h1").inner_text() == "Select daily usage to view"
    shoot(page, request, viewport)


# ------------------------------------------------------------------------ audit and history
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_audit_before_after_is_json_and_readable_in_both_themes(signed_in, live_server, request, viewport):
    from audit.models import AuditEvent
    from tenants.services.tenants import tenant_update
    from tests.tenants.factories import make_plan

    tenant = make_tenant("acme")
    tenant_update(tenant=tenant, name="Acme Inc", plan=make_plan("gold"), actor=None)
    event = AuditEvent.objects.get(action="tenant.update")
    page = signed_in(viewport)
    for path in (f"/admin/audit/auditevent/{event.pk}/change/", f"/admin/tenants/tenant/{tenant.pk}/history/"):
        page.goto(f"{live_server.url}{path}")
        changed = page.locator(".audit-diff tr.changed").first
        assert "Gold" in page.locator(".audit-diff").first.inner_text()
        assert '"Acme Inc"' in page.locator(".audit-diff").first.inner_text()
        cell = changed.locator("td").first
        colour = cell.evaluate("e => getComputedStyle(e).color")
        backdrop = cell.evaluate("e => getComputedStyle(e).backgroundColor")
        assert contrast(colour, backdrop) >= 4.5, (viewport, path, colour, backdrop)
        if viewport == "desktop-dark":
            assert contrast(backdrop, "rgb(255, 255, 255)") > 4, backdrop  # no light row on a dark page
        shoot(page, request, f"{viewport}-{'history' if 'history' in path else 'event'}")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_forced_open_breaker_shows_no_half_open_time(signed_in, live_server, request, viewport):
    from resilience.breakers import breaker
    from resilience.breakers.registry import forget_breakers
    from resilience.breakers.services import breaker_force_open

    forget_breakers()
    breaker("upstream.acme")
    breaker_force_open(name="upstream.acme", reason="incident 7", actor=None)
    page = signed_in(viewport)
    page.goto(f"{live_server.url}/admin/ops/breakers/")
    row = page.locator('tr[data-breaker="upstream.acme"]')
    assert "until closed by an operator" in row.inner_text()
    assert not re.search(r"\d\d:\d\d:\d\d", row.locator("td").nth(5).inner_text())
    shoot(page, request, viewport)


# ------------------------------------------------------------------------ ops pages
def _ops_data():
    import contextlib

    from resilience.breakers import breaker
    from resilience.breakers.registry import forget_breakers
    from resilience.ratelimit.limiter import default_limiter

    forget_breakers()
    for name in ("upstream.acme-corporation-international", "upstream.globex", "webhooks.partner-endpoint-eu"):
        cb = breaker(name, fail_max=1)
        with contextlib.suppress(Exception):  # tripping it is the point
            cb.call(lambda: 1 / 0)
    limiter = default_limiter()
    for n in range(6):
        limiter.hit("ip", None, f"2001:db8:85a3::8a2e:370:{n}", limit=2, burst=0)
        limiter.hit("user", None, f"someone-with-a-long-username-{n}@example.com", limit=2, burst=0)


OPS_PAGES = ["/admin/ops/redis/", "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


@pytest.mark.parametrize("path", OPS_PAGES)
def test_ops_tables_scroll_in_their_box_on_a_phone(signed_in, live_server, request, path, settings):
    settings.RESILIENCE_OPS_REFRESH_SECONDS = 0
    _ops_data()
    page = signed_in("phone")
    page.goto(f"{live_server.url}{path}")
    page.wait_for_selector("#ops-live")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} is {overflow} px wider than a 390 px phone"
    for box in page.locator(".ops-table, .ops-grid .module").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect()).map(r => [r.left, r.right])"
    ):
        assert box[0] >= 0 and box[1] <= 390 + 0.5, (path, box)
    shoot(page, request, f"{path.strip('/').replace('/', '-')}-phone")


def test_auto_refresh_keeps_focus_announces_and_pauses(signed_in, live_server, request, settings):
    settings.RESILIENCE_OPS_REFRESH_SECONDS = 1
    _ops_data()
    page = signed_in("desktop")
    page.goto(f"{live_server.url}/admin/ops/breakers/")
    stamp = page.locator("#ops-live .ops-updated time")
    target = page.locator('#ops-live a[href*="upstream.globex"][href*="action=reset"]')
    href = target.get_attribute("href")
    target.focus()

    first = stamp.get_attribute("datetime")
    page.wait_for_function(
        "(first) => document.querySelector('#ops-live .ops-updated time').getAttribute('datetime') !== first", arg=first
    )
    page.wait_for_timeout(200)  # htmx settles after the swap
    assert page.evaluate("document.activeElement.getAttribute('href')") == href
    assert page.evaluate("document.getElementById('ops-live').contains(document.activeElement)")
    status = page.locator("#ops-refresh-status")
    assert status.get_attribute("aria-live") == "polite"
    assert "Updated" in status.inner_text()

    page.get_by_role("button", name="Pause auto-refresh").click()
    pause = page.locator("#ops-refresh-pause")
    assert pause.get_attribute("aria-pressed") == "true" and pause.inner_text() == "Resume auto-refresh"
    assert "paused" in status.inner_text().lower()
    frozen = stamp.get_attribute("datetime")
    page.wait_for_timeout(2500)
    assert stamp.get_attribute("datetime") == frozen
    shoot(page, request, "paused")
    pause.click()
    assert pause.get_attribute("aria-pressed") == "false"
    page.wait_for_function(
        "(f) => document.querySelector('#ops-live .ops-updated time').getAttribute('datetime') !== f", arg=frozen
    )
    assert not [e for e in page.errors if "Content Security Policy" in e]


# ------------------------------------------------------------------------ settings form
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_tenant_settings_form_shows_every_error_at_once(signed_in, live_server, request, viewport):
    from tenants.models import Tenant

    tenant = make_tenant("acme", settings={"labels": {"team": "core"}})
    page = signed_in(viewport)
    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    page.select_option("select[name=setting_agent_type]", "goose")
    page.fill("input[name=setting_max_concurrent_agents]", "5000")
    page.fill("input[name=setting_session_timeout_seconds]", "5")
    page.fill("textarea[name=setting_labels]", "team=core\nno equals sign")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")  # the answer page, not the one being left
    errors = page.locator(".errorlist").all_inner_texts()
    assert len([e for e in errors if e.strip()]) >= 3, errors
    assert Tenant.objects.get().settings == {"labels": {"team": "core"}}
    width = VIEWPORTS[viewport]["viewport"]["width"]
    box = page.locator("textarea[name=setting_labels]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    shoot(page, request, f"{viewport}-errors")

    page.fill("input[name=setting_max_concurrent_agents]", "8")
    page.fill("input[name=setting_session_timeout_seconds]", "")
    page.fill("textarea[name=setting_labels]", "team=core")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    saved = Tenant.objects.get().settings
    assert saved == {"agent_type": "goose", "max_concurrent_agents": 8, "labels": {"team": "core"}}
