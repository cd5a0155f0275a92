"""100k live identities: the counters page reads one bounded ZSCAN page of the index, never KEYS or SCAN."""

import pytest

from resilience.ratelimit.limiter import lua_library

TOTAL = 100_000
BATCH = 20_000

# The limiter's own Lua functions, looped server-side: 100k real identities in a few EVALs.
_FILL = (
    lua_library()
    + """
local prefix, tenant, first, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
for i = first, first + n - 1 do
  local identity = tostring(i)
  -- One request a day allowed: each identity stays live (and limited-looking) for the whole test.
  local r = rate_limit(prefix .. 'rl:user:' .. tenant .. ':' .. identity, now_ms, 1, 0, 86400000, 1)
  rate_limit_index(prefix .. 'rl:idx:all', prefix .. 'rl:idx:tenant:' .. tenant,
                   'user:' .. tenant .. ':' .. identity, 'user:' .. identity, now_ms, r[5])
end
return n
"""
)


@pytest.fixture
def hundred_thousand(redis_client):
    fill = redis_client.register_script(_FILL)
    for first in range(0, TOTAL, BATCH):
        fill(args=["agentapi:", "-", first, BATCH])
    assert redis_client.zcard("agentapi:rl:idx:all") == TOTAL
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
    assert delta["zscan"] == pages
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
