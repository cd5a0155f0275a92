"""100k live identities: the counters page reads a bounded ZSCAN page of the indexes, never KEYS or SCAN."""

import pytest

from resilience.ratelimit.keys import bucket_index_keys
from resilience.ratelimit.limiter import RateLimiter

TOTAL = 100_000
BATCH = 2_000


@pytest.fixture
def hundred_thousand(redis_client):
    limiter = RateLimiter()
    for first in range(0, TOTAL, BATCH):
        # One request a day allowed: each identity stays live (and limited-looking) for the whole test.
        limiter.hit_many([("user", None, str(i), 1, 0, 86400, 1) for i in range(first, first + BATCH)])
    assert sum(redis_client.zcard(index) for index in bucket_index_keys()) == TOTAL
    return redis_client


def _stats(client):
    return {name[len("cmdstat_") :]: v["calls"] for name, v in client.info("commandstats").items()}


def test_pages_through_100k_identities_with_bounded_work(client, viewer, hundred_thousand):
    redis = hundred_thousand
    client.force_login(viewer)
    seen, cursor, pages = set(), 0, 0
    before = _stats(redis)
    while pages < 5:
        data = client.get("/admin/ops/ratelimits/", {"cursor": cursor, "format": "json"}).json()
        assert 0 < len(data["identities"]) <= 100
        seen.update(row["identity"] for row in data["identities"])
        cursor, pages = data["next_cursor"], pages + 1
        assert cursor != 0
    after = _stats(redis)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert delta.get("keys", 0) == 0 and delta.get("scan", 0) == 0
    # One ZSCAN per page, two when the page crosses from one index bucket to the next.
    assert pages <= delta["zscan"] <= 2 * pages
    # One HGETALL per row shown (pipelined): the work is one page, not the 100k behind it.
    assert delta["hgetall"] == len(seen) <= pages * 100
    assert len(seen) >= pages * 40


def test_filter_and_html_page_on_100k(client, viewer, hundred_thousand):
    redis = hundred_thousand
    client.force_login(viewer)
    before = _stats(redis)
    html = client.get("/admin/ops/ratelimits/", {"scope": "user", "q": "4242"}).content.decode()
    assert "Next page" in html
    response = client.get("/admin/ops/ratelimits/").content.decode()
    assert response.count("data-identity=") >= 40
    after = _stats(redis)
    assert after.get("keys", 0) == before.get("keys", 0) and after.get("scan", 0) == before.get("scan", 0)
    assert after["zscan"] - before.get("zscan", 0) == 2
