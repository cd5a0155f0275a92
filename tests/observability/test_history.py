"""The ops pages' history: sampled into capped streams, drawn as SVG charts, kept through outages."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import call_command
from django.test import Client

from resilience.history import MAXLEN, counts_key, series_key
from resilience.history.counters import denials
from resilience.history.selectors import history_series
from resilience.history.services import history_sample
from tests.tenants.factories import make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(django_user_model, settings):
    # Sessions in the database: with Redis sessions nobody can be logged in while Redis is down.
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    user = django_user_model.objects.create_superuser("root", "root@example.com", "right-pass-123")
    client = Client()
    client.force_login(user)
    return client


def test_a_sample_writes_one_entry_per_series_once_per_slot(redis_client):
    now = time.time()
    written = history_sample(now=now)
    assert set(written) == {"redis", "ratelimit", "breakers"}
    assert all(isinstance(fields, dict) for fields in written.values())
    again = history_sample(now=now + 1)  # same minute: a second maintenance replica
    assert again == {"redis": "skipped", "ratelimit": "skipped", "breakers": "skipped"}
    slot = int(now // 60 * 60 * 1000)
    for series in ("redis", "ratelimit", "breakers"):
        assert redis_client.xrange(series_key(series))[0][0] == f"{slot}-0"
    redis_fields = redis_client.xrange(series_key("redis"))[0][1]
    assert {"latency_ms", "used_memory", "maxmemory", "instantaneous_ops_per_sec", "keyspace_hits"} <= set(redis_fields)
    assert "state:redis" in redis_client.xrange(series_key("breakers"))[0][1]


def test_each_series_is_capped_at_24_hours_of_minutes(redis_client):
    start = time.time() - (MAXLEN + 10) * 60
    for minute in range(MAXLEN + 10):
        history_sample(now=start + minute * 60)
    for series in ("redis", "ratelimit", "breakers"):
        assert redis_client.xlen(series_key(series)) == MAXLEN


def test_refusals_per_scope_are_counted_and_read_as_per_sample_deltas(redis_client):
    tenant = make_tenant("acme", plan=make_plan("tiny", rate_limit_per_minute=1, burst=0))
    _, secret = make_key(tenant)
    client = Client()
    now = time.time()
    history_sample(now=now - 120)
    for _ in range(4):
        client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    denials.flush()
    assert redis_client.hget(counts_key(), "denied:tenant") == "3"
    history_sample(now=now - 60)
    points = history_series("ratelimit", now=now)["points"]
    assert points[-1]["tenant"] == 3 and points[0]["tenant"] is None


def test_redis_series_derive_the_hit_ratio_between_samples(redis_client):
    now = time.time()
    history_sample(now=now - 180)
    history_sample(now=now - 120)  # only the sampler's own reads in between: a few misses, no hits
    redis_client.set("agentapi:probe:raw", "1")
    for _ in range(40):
        redis_client.get("agentapi:probe:raw")
    history_sample(now=now - 60)
    points = history_series("redis", now=now)["points"]
    assert points[0]["hit_ratio"] is None
    assert points[1]["hit_ratio"] == 0.0
    assert points[2]["hit_ratio"] > 0.85
    assert points[-1]["latency_ms"] > 0 and points[-1]["used_memory"] > 0


def test_run_maintenance_samples_the_history(redis_client):
    call_command("run_maintenance", "--once", json=True)
    assert redis_client.xlen(series_key("redis")) == 1


@pytest.mark.parametrize(
    ("path", "series", "chart_ids"),
    [
        ("/admin/ops/redis/", "redis", ("h-latency", "h-memory", "h-ops", "h-hits")),
        ("/admin/ops/ratelimits/", "ratelimit", ("h-denied",)),
        ("/admin/ops/breakers/", "breakers", ("h-states", "h-failures", "h-transitions")),
    ],
)
def test_pages_draw_the_history_and_json_twins_return_it(staff_client, redis_server, path, series, chart_ids):
    now = time.time()
    for minutes_ago in (3, 2, 1):
        history_sample(now=now - minutes_ago * 60)
    denials("ip")
    denials.flush()
    history_sample(now=now)
    page = staff_client.get(path).content.decode()
    for chart_id in chart_ids:
        assert f'id="{chart_id}"' in page
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in page
    assert page.count('<svg class="history-svg"') >= len(chart_ids)
    assert "Newest samples as a table" in page and "<desc" in page
    # No asset from another origin (a bare "cdn" also matches random CSRF tokens).
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", page), "an asset from another origin"
    twin = staff_client.get(f"{path}?format=json").json()
    assert twin["history"]["series"] == series and len(twin["history"]["points"]) == 4
    assert twin["history"]["stale"] is False

    redis_server.kill()
    down = staff_client.get(path)
    html = down.content.decode()
    assert "Redis is down: the history cannot be read." in html
    assert "Showing the last samples this process read" in html
    assert html.count('<svg class="history-svg"') >= len(chart_ids)  # the last samples, still drawn
    stale = staff_client.get(f"{path}?format=json").json()["history"]
    assert stale["stale"] is True and stale["error"] and len(stale["points"]) == 4


def test_a_page_without_samples_says_how_to_get_them(staff_client):
    page = staff_client.get("/admin/ops/redis/").content.decode()
    assert "No samples yet" in page and "run_maintenance" in page
