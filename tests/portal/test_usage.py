"""Usage page: 30 days of requests as an SVG chart with a table twin, plus the tenant's live rate-limit state."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from resilience.connection import get_redis
from resilience.ratelimit.limiter import default_limiter
from tenants.keys import usage_key
from tenants.models import UsageDaily
from tenants.services.plans import plan_update

from .conftest import client_for

pytestmark = pytest.mark.django_db


def usage_url(world):
    return reverse("portal:usage", kwargs={"tenant": world.a.slug})


def test_page_charts_flushed_and_live_counts_of_this_tenant_only(world, owner_client):
    today = timezone.now().date()
    UsageDaily.objects.create(tenant=world.a, day=today - dt.timedelta(days=3), metric="requests", count=120)
    UsageDaily.objects.create(tenant=world.a, day=today - dt.timedelta(days=45), metric="requests", count=777)
    UsageDaily.objects.create(tenant=world.b, day=today - dt.timedelta(days=3), metric="requests", count=9999)
    get_redis().hset(usage_key(world.a.slug, world.a.pk, today.strftime("%Y%m%d")), "requests", 42)
    get_redis().hset(usage_key(world.a.slug, world.a.pk, today.strftime("%Y%m%d")), "rate_limited", 5)
    html = owner_client.get(usage_url(world)).content.decode()
    assert html.count('<g class="usage-day"') == 30
    assert f"{(today - dt.timedelta(days=3)):%b} {(today - dt.timedelta(days=3)).day}: 120 served, 0 refused" in html
    assert f"{today:%b} {today.day}: 42 served, 5 refused: rate limit" in html
    assert "9999" not in html and "777" not in html
    assert re.search(r"Served, last 30 days</dt><dd>162</dd>", html)
    assert 'role="img"' in html and "<desc" in html and "Show the numbers" in html


def test_rate_limit_status_shows_the_tenant_window_and_busiest_callers(world, owner_client):
    html = owner_client.get(usage_url(world)).content.decode()
    assert "full allowance is available" in html
    limiter = default_limiter()
    for _ in range(5):
        limiter.hit("tenant", world.a, world.a.slug, limit=60, burst=2)
        limiter.hit("ip", world.a, "203.0.113.9", limit=60, burst=2)
    limiter.hit("tenant", world.b, world.b.slug, limit=60, burst=2)
    html = owner_client.get(usage_url(world)).content.decode()
    assert "Limited" in html and "refused in this window" in html
    assert "203.0.113.9" in html
    assert 'id="burst-meter"' in html


def test_daily_quota_is_shown_when_the_plan_has_one(world, owner_client):
    plan_update(plan=world.a.plan, actor=None, daily_quota=1000)
    html = owner_client.get(usage_url(world)).content.decode()
    assert "of 1000 daily requests" in html


def test_page_degrades_when_redis_is_down(world, settings, redis_server):
    # Sessions must survive the outage for this request to be authenticated at all.
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    client = client_for(world.a_member)
    redis_server.kill()
    response = client.get(usage_url(world))
    assert response.status_code == 200
    assert "cannot be read right now" in response.content.decode()


def test_refusals_by_limit_and_by_quota_are_shown_per_day_beside_served(world, owner_client):
    """79 of 90 requests refused must not read as "11 requests, OK"."""
    today = timezone.now().date()
    yesterday = today - dt.timedelta(days=1)
    for metric, count in {"requests": 30, "rate_limited": 4, "quota_exceeded": 2}.items():
        UsageDaily.objects.create(tenant=world.a, day=yesterday, metric=metric, count=count)
    today_key = usage_key(world.a.slug, world.a.pk, today.strftime("%Y%m%d"))
    get_redis().hset(today_key, mapping={"requests": 11, "rate_limited": 79})
    UsageDaily.objects.create(tenant=world.b, day=today, metric="rate_limited", count=5555)
    html = owner_client.get(usage_url(world)).content.decode()
    assert re.search(r"Served, last 30 days</dt><dd>41</dd>", html)
    assert re.search(r"Refused by rate limit</dt><dd>83</dd>", html)
    assert re.search(r"Refused by daily quota</dt><dd>2</dd>", html)
    assert "Today: 11 served, 79 refused by the rate limit, 0 refused by the daily quota" in html
    rows = re.findall(
        r'<tr><th scope="row"><time datetime="([\d-]+)">[^<]+</time></th>'
        r'<td class="usage-num">(\d+)</td><td class="usage-num">(\d+)</td><td class="usage-num">(\d+)</td></tr>',
        html,
    )
    assert rows[0] == (f"{today:%Y-%m-%d}", "11", "79", "0")
    assert rows[1] == (f"{yesterday:%Y-%m-%d}", "30", "4", "2")
    assert len(rows) == 30
    assert "5555" not in html
