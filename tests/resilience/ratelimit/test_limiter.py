"""The limiter's decisions against a real redis-server."""

from __future__ import annotations

import multiprocessing
import random

import pytest
import redis

from resilience.ratelimit import LIBRARY, Decision, RateLimiter, state_key
from resilience.ratelimit.keys import BUCKETS, bucket_index_keys, call_keys, tenant_index_key


class FakeClock:
    """A millisecond clock the test moves by hand (Redis stays real)."""

    def __init__(self, start_ms: float = 1_700_000_000_000.0) -> None:
        self.now = start_ms

    def __call__(self) -> float:
        return self.now


def admitted_in_any_window(times: list[float], window_ms: float) -> int:
    """Return the largest number of admitted requests inside one interval [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_ms:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_burst_admits_burst_plus_one_back_to_back_then_denies():
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    decisions = [limiter.hit("user", "acme", "u1", limit=60, burst=10) for _ in range(15)]
    assert [d.allowed for d in decisions] == [True] * 11 + [False] * 4
    assert [d.remaining for d in decisions[:11]] == list(range(10, -1, -1))
    denied = decisions[-1]
    assert denied.retry_after == pytest.approx(1.0)  # one emission interval: 60 s / 60
    assert denied.headers()["Retry-After"] == "1"
    assert denied.headers()["RateLimit-Remaining"] == "0"
    clock.now += 1000
    assert limiter.hit("user", "acme", "u1", limit=60, burst=10).allowed


def test_no_window_admits_more_than_limit_plus_burst_across_the_boundary():
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    limit, burst, window_ms = 30, 5, 60_000
    admitted = []
    # A fixed-window limiter admits 2 x limit around a minute boundary: hammer both sides of it.
    for t in [58_000, 59_000, 59_999, 60_000, 60_001, 61_000, 119_999, 120_000]:
        clock.now = 1_700_000_000_000 + t
        for _ in range(limit + burst):
            if limiter.hit("ip", None, "10.0.0.1", limit=limit, burst=burst, window=60).allowed:
                admitted.append(clock.now)
    assert admitted_in_any_window(admitted, window_ms) <= limit + burst


@pytest.mark.parametrize("store", ["redis", "process memory (REDIS_ENABLE=false)"])
def test_random_traffic_never_exceeds_limit_plus_burst_in_any_window_and_reaches_it(store, settings):
    settings.RESILIENCE_REDIS_ENABLED = store == "redis"
    rng = random.Random(4)
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    limit, burst, window_ms = 20, 7, 10_000
    admitted = []
    for _ in range(3000):
        clock.now += rng.choice([0, 0, 1, 3, 50, 200, 499, 500, 501, 2000])
        if limiter.hit("user", "t", f"u-{store}", limit=limit, burst=burst, window=10).allowed:
            admitted.append(clock.now)
    assert admitted_in_any_window(admitted, window_ms) == limit + burst  # the bound, and it is reached


def test_sustained_rate_is_limit_per_window():
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    admitted = 0
    for _ in range(600 * 10):  # ten minutes, one attempt every 100 ms
        clock.now += 100
        admitted += limiter.hit("tenant", "acme", "acme", limit=60, burst=10).allowed
    assert 600 <= admitted <= 600 + 10


def test_cost_counts_several_units():
    limiter = RateLimiter(clock_ms=FakeClock())
    assert limiter.hit("user", None, "u", limit=10, burst=4, cost=5).allowed
    assert not limiter.hit("user", None, "u", limit=10, burst=4, cost=1).allowed
    with pytest.raises(ValueError, match="never be admitted"):
        limiter.hit("user", None, "u", limit=10, burst=4, cost=6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scope": "nope"}, "scope must be"), ({"limit": 0}, "limit >= 1"), ({"burst": -1}, "burst >= 0")],
)
def test_bad_arguments_are_refused(kwargs, message):
    call = {"scope": "user", "limit": 10, "burst": 1} | kwargs
    scope = call.pop("scope")
    with pytest.raises(ValueError, match=message):
        RateLimiter().hit(scope, None, "u", **call)


def test_keys_are_readable_and_expire_with_the_allowance(redis_client):
    limiter = RateLimiter()  # Redis server TIME
    limiter.hit("user", "acme", "alice", limit=60, burst=10)
    limiter.hit("user", "acme", "alice", limit=60, burst=10)
    key = state_key("user", "acme", "alice")
    assert key == "agentapi:rl:{t:acme}:user:acme:alice"  # in the tenant's slot
    state = redis_client.hgetall(key)
    assert state["l"] == "60" and state["b"] == "10" and state["w"] == "60000"
    # Key and index entries live the index horizon (60 s; longer only when twice the tolerance,
    # 2 x 11 s here, is longer), renewed only when the allowance would outlive them.
    index = tenant_index_key("acme")
    assert index == "agentapi:rlidx:{t:acme}"
    assert 58_000 < redis_client.pttl(key) <= 60_000
    assert 58_000 < redis_client.pttl(index) <= 60_000
    expires_at_ms = redis_client.zscore(index, "user:acme:alice")
    assert expires_at_ms == int(state["ix"]) // 1000  # the entry expires with its key
    assert int(state["ix"]) > int(state["t"])


def test_identities_of_no_tenant_spread_over_the_bucket_slots(redis_client):
    limiter = RateLimiter()
    for n in range(200):
        limiter.hit("ip", None, f"10.0.{n // 250}.{n % 250}", limit=60, burst=0)
    used = [index for index in bucket_index_keys() if redis_client.zcard(index)]
    assert len(used) > BUCKETS // 2  # no single index holds every address
    assert sum(redis_client.zcard(index) for index in used) == 200
    one = call_keys("ip", None, "10.0.0.1")
    tag = one.state[one.state.index("{") : one.state.index("}") + 1]
    assert one.index_key.endswith(tag) and redis_client.zscore(one.index_key, "ip:-:10.0.0.1") is not None


def test_index_entries_expire_and_are_trimmed(redis_client):
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    limiter.hit("ip", "acme", "10.0.0.1", limit=60, burst=0)  # listed for the 60 s horizon
    clock.now += 61_000
    limiter.hit("ip", "acme", "10.0.0.2", limit=60, burst=0)
    assert redis_client.zrange(tenant_index_key("acme"), 0, -1) == ["ip:acme:10.0.0.2"]


def test_busy_identity_rewrites_its_index_entry_once_per_horizon(redis_client):
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    index = tenant_index_key("acme")
    limiter.hit("user", "acme", "busy", limit=60, burst=9)  # tolerance 10 s: entry valid for the 60 s horizon
    first = redis_client.zscore(index, "user:acme:busy")
    for _ in range(50):
        clock.now += 1000
        limiter.hit("user", "acme", "busy", limit=60, burst=9)
    assert redis_client.zscore(index, "user:acme:busy") == first  # still ahead of the key's expiry
    clock.now += 10_000
    limiter.hit("user", "acme", "busy", limit=60, burst=9)
    assert redis_client.zscore(index, "user:acme:busy") > first


def test_a_long_tolerance_keeps_an_identity_listed_longer_than_the_horizon(redis_client):
    RateLimiter().hit("tenant", "acme", "acme", limit=10, burst=59)  # tolerance 6 min: listed 12 min
    assert 700_000 < redis_client.pttl(tenant_index_key("acme")) <= 720_000


def test_sparse_traffic_over_many_identities_touches_the_index_once_per_horizon(redis_client):
    """Identities hit every few seconds, each with a tiny tolerance, refresh their entry once a minute."""
    clock = FakeClock()
    limiter = RateLimiter(clock_ms=clock)
    before = redis_client.info("commandstats")
    identities, rounds = 50, 12
    for _ in range(rounds):  # 12 rounds 5 s apart: inside one 60 s horizon
        for n in range(identities):
            assert limiter.hit("tenant", f"t{n}", f"t{n}", limit=100_000, burst=10).allowed
        clock.now += 5_000
    after = redis_client.info("commandstats")

    def calls(name: str) -> int:
        return after.get(f"cmdstat_{name}", {}).get("calls", 0) - before.get(f"cmdstat_{name}", {}).get("calls", 0)

    assert calls("zadd") == identities  # one index entry per identity, not one per request
    per_request = sum(
        stat["calls"] - before.get(name, {}).get("calls", 0) for name, stat in after.items() if name != "cmdstat_info"
    ) / (identities * rounds)
    assert per_request < 4, per_request  # EVALSHA, HMGET, HSET (+ the index once a minute)
    # The ops page stays right: every identity with a live bucket is listed, expiring with its key.
    listed = {member for n in range(identities) for member in redis_client.zrange(tenant_index_key(f"t{n}"), 0, -1)}
    assert listed == {f"tenant:t{n}:t{n}" for n in range(identities)}
    state = redis_client.hgetall(state_key("tenant", "t0", "t0"))
    assert redis_client.zscore(tenant_index_key("t0"), "tenant:t0:t0") == int(state["ix"]) // 1000


def test_index_key_vanishes_when_all_members_expired(redis_client):
    RateLimiter().hit("ip", "acme", "10.0.0.9", limit=6000, burst=0)  # 10 ms allowance, listed for the horizon
    ttl = redis_client.pttl(tenant_index_key("acme"))
    assert 59_000 < ttl <= 60_000


def test_nosript_fallback_after_script_flush(redis_client):
    limiter = RateLimiter()
    assert limiter.hit("user", None, "u", limit=5, burst=1).allowed
    redis_client.script_flush()
    assert limiter.hit("user", None, "u", limit=5, burst=1).allowed
    assert not limiter.hit("user", None, "u", limit=5, burst=1).allowed


def test_the_library_defines_the_function_other_scripts_include(redis_client):
    script = LIBRARY.read_text() + "\nreturn rate_limit(KEYS[1], ARGV[1], 10, 0, 60000, 1)"
    assert redis_client.eval(script, 1, state_key("user", None, "lib"), 1_700_000_000_000) == [
        1,
        0,
        6000,
        0,
        6000,
        1,
        60000,
    ]


def _hammer(port: int, attempts: int, queue) -> None:
    client = redis.Redis(port=port)
    limiter = RateLimiter(lambda: client)
    admitted = sum(
        limiter.hit("tenant", "acme", "acme", limit=1, burst=199, window=86400).allowed for _ in range(attempts)
    )
    queue.put(admitted)


def test_four_processes_hammering_one_key_admit_exactly_the_allowance(redis_server):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_hammer, args=(redis_server.port, 150, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert sum(results) == 200  # burst + 1 with a one-per-day refill, out of 600 attempts


def test_decision_headers_when_allowed():
    decision = Decision(True, 60, 7, 3.2, 0)
    assert decision.headers() == {"RateLimit-Limit": "60", "RateLimit-Remaining": "7", "RateLimit-Reset": "4"}
