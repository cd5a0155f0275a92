"""The admin ops pages in real Chromium: navigation, filters, actions, auto-refresh, outages."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect
from pybreaker import CircuitBreakerError

from agentapi_admin.redis_process import free_port
from audit.models import AuditEvent
from resilience.breakers import breaker
from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import forget_breakers
from resilience.health.selectors import health_state_reset
from resilience.ratelimit.limiter import RateLimiter
from tenants.models import Plan, Tenant
from tests.browser.conftest import login
from tests.conftest import BASE_DIR, clean_env

PASSWORD = "a-long-test-password-1"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_state():
    """No health samples, a closed Redis breaker and no cached breakers from earlier tests."""
    health_state_reset()
    redis_breaker.reset()
    forget_breakers()
    yield
    health_state_reset()
    redis_breaker.reset()
    forget_breakers()


@pytest.fixture
def admin_page(page, live_server, settings):
    settings.RESILIENCE_OPS_REFRESH_SECONDS = 1
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    login(page, live_server, "/admin/login/", "root", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/$"))
    return page


def test_redis_health_page(admin_page, live_server, redis_client, screenshot, console_errors):
    page = admin_page
    with redis_client.pipeline() as pipe:
        for i in range(50):
            pipe.set(f"agentapi:rl:user:-:{i}", 1)
            pipe.set(f"agentapi:usage:t:{i}", 1)
        pipe.execute()
    page.click("text=Redis health")
    page.wait_for_url(re.compile(r"/admin/ops/redis/$"))
    expect(page.locator(".breadcrumbs")).to_contain_text("Home \u203a Operations console \u203a Redis health")
    expect(page.locator(".ops-ok")).to_contain_text("PING p50")
    expect(page.locator("tr[data-family=rl]")).to_contain_text("Rate limits")
    first = page.locator(".ops-updated time").get_attribute("datetime")
    # htmx replaces the live region on its own (refresh set to 1 s for the test).
    expect(page.locator(".ops-updated time")).not_to_have_attribute("datetime", first, timeout=5000)
    screenshot("redis-health")

    # An allkeys-* policy is flagged, and the slowlog shows commands without their values.
    redis_client.config_set("maxmemory", "64mb")
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    redis_client.config_set("slowlog-log-slower-than", 0)
    try:
        redis_client.set("agentapi:rl:user:-:secret", "value-never-shown")
        page.reload()
        expect(page.locator(".ops-warn")).to_contain_text("allkeys-lru can evict sessions")
        expect(page.locator("body")).not_to_contain_text("value-never-shown")
        screenshot("redis-health-allkeys-warning")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", "0")
        redis_client.config_set("slowlog-log-slower-than", 10000)
        redis_client.slowlog_reset()
    assert console_errors == []


def test_sessions_page_search_and_revoke(admin_page, live_server, browser, screenshot, console_errors):
    page = admin_page
    bob = get_user_model().objects.create_user("bob", "bob@example.com", PASSWORD, is_staff=True)
    bob_context = browser.new_context(user_agent="BobBrowser/2.0")
    bob_page = bob_context.new_page()
    login(bob_page, live_server, "/admin/login/", "bob", PASSWORD)
    bob_page.wait_for_url(re.compile(r"/admin/$"))

    page.goto(f"{live_server.url}/admin/")
    page.click("#content-main >> text=Sessions")
    expect(page.locator("#session-users")).to_contain_text("bob")
    screenshot("sessions-users")

    page.fill("#id_q", "bo")
    page.click("input[value=Search]")
    expect(page.locator("#session-users tbody tr")).to_have_count(1)
    # The poll keeps the filter: after a refresh the table still shows only bob.
    page.wait_for_timeout(2200)
    expect(page.locator("#session-users tbody tr")).to_have_count(1)
    assert "q=bo" in page.url
    page.click("#session-users >> text=bob")
    expect(page.locator("#user-sessions")).to_contain_text("BobBrowser/2.0")
    screenshot("sessions-of-bob")

    page.click("#user-sessions >> text=Revoke…")
    expect(page.locator("#content")).to_contain_text("Revoke this session of bob?")
    page.click("input[value='Yes, revoke this session']")  # no reason yet: the browser refuses to submit
    expect(page.locator("textarea[name=reason]:invalid")).to_have_count(1)
    expect(page.locator("a.cancel-link")).to_have_attribute("href", f"/admin/ops/sessions/?user={bob.pk}")
    page.fill("textarea[name=reason]", "laptop stolen")
    screenshot("session-revoke-confirm")
    page.click("input[value='Yes, revoke this session']")
    expect(page.locator(".messagelist")).to_contain_text("Revoked session")
    expect(page.locator("#user-sessions")).to_contain_text("No live sessions.")
    screenshot("sessions-after-revoke")

    bob_page.reload()
    expect(bob_page).to_have_url(re.compile(r"/admin/login/"))
    bob_context.close()
    assert AuditEvent.objects.get(action="session.revoke").reason == "laptop stolen"
    assert console_errors == []


def test_revoke_all_works_without_javascript(browser, live_server, settings, screenshot):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    user = get_user_model().objects.create_user("carol", password=PASSWORD, is_staff=True)
    carols = []
    for _ in range(2):
        context = browser.new_context()
        carols.append(context)
        login(context.new_page(), live_server, "/admin/login/", "carol", PASSWORD)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, live_server, "/admin/login/", "root", PASSWORD)
    page.goto(f"{live_server.url}/admin/ops/sessions/?user={user.pk}")
    expect(page.locator("#user-sessions tbody tr")).to_have_count(2)
    page.click("text=Revoke all…")
    page.fill("textarea[name=reason]", "offboarding")
    page.click("input[value='Yes, revoke them all']")
    expect(page.locator(".messagelist")).to_contain_text("Revoked 2 session(s) of carol")
    page.screenshot(
        path=str(screenshot.__globals__["ARTIFACTS"] / "test_revoke_all_works_without_javascript-no-js.png"),
        full_page=True,
    )
    for carol in carols:
        carol_page = carol.pages[0]
        carol_page.goto(f"{live_server.url}/admin/")
        expect(carol_page).to_have_url(re.compile(r"/admin/login/"))
        carol.close()
    context.close()


def test_ratelimits_page_filter_reset_and_lookup(admin_page, live_server, screenshot, console_errors, settings):
    page = admin_page
    # Slow refill, so the three failed sign-ins below are still all counted at the lookup.
    settings.RESILIENCE_FORM_RATE_IP = settings.RESILIENCE_FORM_RATE_USERNAME = "5/h"
    plan = Plan.objects.create(code="std", name="Standard")
    acme = Tenant.objects.create(slug="acme", name="Acme", plan=plan)
    Tenant.objects.create(slug="globex", name="Globex", plan=plan)
    limiter = RateLimiter()
    # One request an hour: identities stay live for the whole test; a second hit is denied.
    for identity, hits in [("17", 3), ("18", 1), ("19", 2)]:
        for _ in range(hits):
            limiter.hit("user", acme, identity, limit=1, burst=0, window=3600)
    limiter.hit("tenant", acme, "acme", limit=1, burst=0, window=3600)
    for n in range(3):
        limiter.hit("ip", None, f"198.51.100.{n}", limit=1, burst=0, window=3600)
    for _ in range(3):
        Client().post("/admin/login/", {"username": "mallory", "password": "guess"}, REMOTE_ADDR="192.0.2.66")

    page.click("#content-main >> text=Rate-limit counters")
    # 7 above plus mallory's two sign-in budgets (the admin's own successful sign-in leaves none).
    expect(page.locator("#identities tbody tr")).to_have_count(9)
    expect(page.locator("#identities")).to_contain_text("login:user:mallory")
    screenshot("ratelimits-all")

    page.select_option("#id_tenant", "acme")
    page.select_option("#id_scope", "user")
    page.click("input[value=Filter]")
    expect(page.locator("#identities tbody tr")).to_have_count(3)
    expect(page.locator("#top-limited tbody tr").first).to_contain_text("17")
    page.wait_for_timeout(2200)  # an htmx refresh keeps the filters
    expect(page.locator("#identities tbody tr")).to_have_count(3)
    screenshot("ratelimits-acme-users")

    page.click("tr[data-identity='17'] >> text=Reset…")
    page.fill("textarea[name=reason]", "customer called")
    screenshot("ratelimit-reset-confirm")
    page.click("input[value='Yes, reset it']")
    expect(page.locator(".messagelist")).to_contain_text("Reset user 17 (tenant acme).")
    expect(page.locator("tr[data-identity='17']")).to_have_count(0)

    page.click("text=Reset every identity of acme…")
    page.fill("textarea[name=reason]", "plan upgraded")
    page.click("input[value='Yes, reset the tenant']")
    expect(page.locator(".messagelist")).to_contain_text("Reset 3 identities of tenant acme.")
    expect(page.locator("#identities")).to_contain_text("No live identities")

    page.goto(f"{live_server.url}/admin/ops/ratelimits/")
    page.fill("#id_ip", "192.0.2.66")
    page.fill("#id_username", "mallory")
    page.click("input[value='Look up']")
    expect(page.locator("#throttle-result")).to_contain_text("ip")
    expect(page.locator("#throttle-result tbody tr").first).to_contain_text("3")
    screenshot("ratelimits-throttle-lookup")
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {
        "ratelimit.reset_identity",
        "ratelimit.reset_tenant",
    }
    assert console_errors == []


def test_breakers_page_force_and_reset(admin_page, live_server, screenshot, console_errors):
    page = admin_page
    breaker("upstream.acme")
    globex = breaker("upstream.globex")
    for _ in range(globex.fail_max):
        with contextlib.suppress(ZeroDivisionError, CircuitBreakerError):
            globex.call(lambda: 1 / 0)

    page.click("#content-main >> text=Circuit breakers")
    expect(page.locator("tr[data-breaker='upstream.globex']")).to_contain_text("open")
    expect(page.locator("tr[data-breaker='upstream.acme']")).to_contain_text("closed")
    screenshot("breakers")

    page.click("tr[data-breaker='upstream.acme'] >> text=Open…")
    page.fill("textarea[name=reason]", "upstream maintenance window")
    screenshot("breaker-force-open-confirm")
    page.click("input[value='Yes, force open']")
    expect(page.locator(".messagelist")).to_contain_text("breaker upstream.acme is now open")
    expect(page.locator("tr[data-breaker='upstream.acme']")).to_contain_text("forced open")
    expect(page.locator("#events")).to_contain_text("upstream maintenance window")

    page.click("tr[data-breaker='upstream.acme'] >> text=Close…")
    page.fill("textarea[name=reason]", "maintenance over")
    page.click("input[value='Yes, force close']")
    expect(page.locator("tr[data-breaker='upstream.acme']")).to_contain_text("forced closed")

    page.click("tr[data-breaker='upstream.globex'] >> text=Reset…")
    page.fill("textarea[name=reason]", "globex fixed their API")
    page.click("input[value='Yes, reset']")
    expect(page.locator("tr[data-breaker='upstream.globex'] .badge").first).to_have_text("closed")
    screenshot("breakers-after-actions")
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert {"breaker.force_open", "breaker.force_close", "breaker.reset"} <= set(actions)
    assert console_errors == []


OPS_PATHS = ["/admin/ops/redis/", "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


def test_anonymous_and_non_staff_get_the_login_page_or_403(page, live_server, settings, screenshot):
    for path in OPS_PATHS:
        page.goto(f"{live_server.url}{path}")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
        twin = page.request.get(f"{live_server.url}{path}?format=json", max_redirects=0)
        assert twin.status == 403 and twin.json()["error"] == "Staff login required."
    # The admin login form refuses non-staff, so sign the customer in the way the portal
    # would: a real session, handed to the browser as its cookie.
    customer = get_user_model().objects.create_user("customer", password=PASSWORD)
    signed_in = Client()
    signed_in.force_login(customer)
    cookie = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    for path in OPS_PATHS:
        page.goto(f"{live_server.url}{path}")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
        expect(page.locator("body")).to_contain_text("not authorized to access this page")
        twin = page.request.get(f"{live_server.url}{path}?format=json", max_redirects=0)
        assert twin.status == 403
    screenshot("non-staff-refused")


@pytest.fixture
def cached_db_server(tmp_path, redis_server):
    """The app in its own process with SESSION_STORAGE=cached_db, on the fixture's Redis.

    The in-process live server builds its middleware (and session engine) once, so a
    different SESSION_STORAGE needs a process of its own, configured as a deployment is.
    """
    env = clean_env(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_server.url,
        REDIS_CONNECTION_TIMEOUT="1s",
        SESSION_STORAGE="cached_db",
        OPS_REFRESH_SECONDS="0",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True)
    create = (
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('root', 'r@example.com', '{PASSWORD}')"
    )
    subprocess.run([*manage, "shell", "-c", create], cwd=BASE_DIR, env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()  # noqa: S310 - local test server
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the cached_db app server did not start")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_every_page_renders_while_redis_is_down(page, cached_db_server, redis_server, screenshot):
    url = cached_db_server
    failed = []
    # runserver answers /favicon.ico with 404; anything else failing to load is a bug.
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url))
    page.goto(f"{url}/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    redis_server.kill()
    page.goto(f"{url}/admin/ops/redis/")
    expect(page.locator(".ops-down")).to_contain_text("Redis is unreachable")
    expect(page.locator(".ops-down")).to_contain_text("Failing since")
    screenshot("redis-down")
    page.goto(f"{url}/admin/ops/sessions/")
    expect(page.locator("#session-users")).to_contain_text("root")
    screenshot("sessions-redis-down")
    page.goto(f"{url}/admin/ops/ratelimits/")
    expect(page.locator(".ops-down")).to_contain_text("Redis is unreachable")
    screenshot("ratelimits-redis-down")
    page.goto(f"{url}/admin/ops/breakers/")
    expect(page.locator("#storage-degraded")).to_contain_text("storage degraded")
    expect(page.locator("tr[data-breaker=redis]")).to_be_visible()
    screenshot("breakers-redis-down")
    for path in ("redis", "ratelimits", "breakers", "sessions"):
        twin = page.request.get(f"{url}/admin/ops/{path}/?format=json")
        assert twin.status in (200, 503) and twin.json()
    assert failed == []
