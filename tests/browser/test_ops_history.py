"""History charts on the Redis, rate-limit and breaker pages in real Chromium: desktop, dark theme and a phone."""

from __future__ import annotations

import contextlib
import math
import re
import time

import pytest
from django.contrib.auth import get_user_model

from resilience.breakers import breaker
from resilience.breakers.registry import forget_breakers
from resilience.history.counters import denials
from resilience.history.services import history_sample
from tests.browser.conftest import ARTIFACTS, login

PASSWORD = "a-long-test-password-1"
PAGES = {
    "redis": ("/admin/ops/redis/", ("h-latency", "h-memory", "h-ops", "h-hits")),
    "ratelimits": ("/admin/ops/ratelimits/", ("h-denied",)),
    "breakers": ("/admin/ops/breakers/", ("h-states", "h-failures", "h-transitions")),
}
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(redis_client):
    """Ninety minutes of samples with real load in between: memory growing, waves of 429s, a flapping breaker."""
    forget_breakers()
    flaky = breaker("upstream.billing", fail_max=2)
    now = time.time()
    for minute in range(90):
        with redis_client.pipeline() as pipe:
            for n in range(40):
                pipe.set(f"agentapi:probe:{minute}:{n}", "x" * 400, ex=3600)
                pipe.get(f"agentapi:probe:{minute}:{n % 7}")
            pipe.execute()
        for _ in range(int(6 + 5 * math.sin(minute / 8))):
            denials("ip")
        for _ in range(minute % 13):
            denials("tenant")
        denials.flush()
        if minute % 30 in (10, 11):
            for _ in range(2):
                with contextlib.suppress(Exception):  # tripping the breaker is the point
                    flaky.call(_fail)
        if minute % 30 == 14:
            flaky.close()
        history_sample(now=now - (90 - minute) * 60)
    yield
    forget_breakers()


def _fail():
    raise OSError("billing upstream refused")


def _signed_in(browser, live_server, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    login(page, live_server, "/admin/login/", "root", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


def _shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ops-history-{name}.png"), full_page=True)


@pytest.mark.parametrize("name", list(PAGES))
def test_history_charts_on_desktop_dark_theme_and_phone(browser, live_server, settings, history, name):
    settings.RESILIENCE_OPS_REFRESH_SECONDS = 0
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    path, charts = PAGES[name]
    for label, options in {
        "desktop": {"viewport": {"width": 1280, "height": 900}},
        "desktop-dark": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"},
        "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
    }.items():
        context, page = _signed_in(browser, live_server, **options)
        errors: list[str] = []
        page.on("console", lambda message, errors=errors: message.type == "error" and errors.append(message.text))
        try:
            page.goto(f"{live_server.url}{path}")
            section = page.locator("section.ops-history")
            section.scroll_into_view_if_needed()
            for chart_id in charts:
                svg = page.locator(f"#{chart_id} svg.history-svg")
                assert svg.count() == 1, (label, chart_id)
                box = svg.bounding_box()
                assert box["width"] > 200 and box["height"] >= 100, (label, chart_id, box)
                assert box["x"] >= 0 and box["x"] + box["width"] <= options["viewport"]["width"], (label, box)
                assert page.locator(f"#{chart_id} svg path").count() >= 1
                # The text alternative: a labelled image and the same sentence under it.
                assert svg.get_attribute("role") == "img"
                desc = page.locator(f"#{chart_id}-desc").text_content()
                assert "max" in desc and "samples" in desc, desc
            history_box = section.bounding_box()
            assert history_box["width"] <= options["viewport"]["width"], (label, history_box)
            if label == "desktop-dark":
                background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background  # the dark theme
            assert not [e for e in errors if "Content Security Policy" in e], errors
            _shoot(page, f"{name}-{label}")
        finally:
            context.close()
