"""Kill a master mid-load: once its replica takes over, the API serves again with limits and sessions intact."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client

from tests.tenants.factories import make_key, make_plan, make_tenant, make_user

pytestmark = [pytest.mark.cluster_redis, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-123456789"
LIMIT, BURST = 60, 100
RECOVERY_BUDGET = 30.0


def _master_of(redis_client, name: str) -> int:
    return redis_client.get_node_from_key(name).port


def _signed_in_on(redis_client, user, port: int | None) -> tuple[Client, str]:
    """Sign in until the session lands on the master `port` (any master when None); return client and key."""
    for _ in range(40):
        client = Client()
        response = client.post("/portal/login/", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        (name,) = [n for n in redis_client.scan_iter(match=f"*{cookie}*", count=1000)]
        if port is None or _master_of(redis_client, name) == port:
            return client, name
    raise AssertionError(f"no session landed on the master on port {port} in 40 sign-ins")


def _remaining(response) -> int | None:
    value = response.headers.get("RateLimit-Remaining")
    return int(value) if value is not None else None


def test_a_master_killed_mid_load_fails_over_with_limits_and_sessions_intact(settings, redis_cluster, redis_client):
    # As docs/deployment.md recommends for a cluster: fail fast during the failover, retry 2 s later.
    settings.RESILIENCE_BREAKER_OVERRIDES = {"redis": {"reset_timeout": 2.0}}
    tenant = make_tenant("acme", plan=make_plan(rate_limit_per_minute=LIMIT, burst=BURST))
    _, secret = make_key(tenant)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    user = make_user("member-1")

    fresh = _remaining(api.get("/api/v1/bootstrap"))
    assert fresh is not None, "the API must count in Redis before the failover"
    for _ in range(30):
        before = api.get("/api/v1/bootstrap")
        assert before.status_code == 200
    remaining_before, counted_at = _remaining(before), time.monotonic()
    assert remaining_before <= fresh - 25

    # The master holding the tenant's rate-limit state; a session stored on that same master.
    limiter_keys = [n for n in redis_client.scan_iter(match="*rl*", count=1000) if redis_client.type(n) != "zset"]
    assert limiter_keys, "the limiter keeps its state in Redis"
    victim_port = _master_of(redis_client, limiter_keys[0])
    browser, session_name = _signed_in_on(redis_client, user, victim_port)
    assert browser.get("/portal/").status_code == 200
    victim = next(node for node in redis_cluster.nodes if node.port == victim_port)
    with redis.Redis(port=victim_port) as direct:
        assert direct.execute_command("WAIT", 1, 5000) >= 1  # what it acknowledged is on its replica

    served_degraded = 0
    killed_at = time.monotonic()
    victim.kill()
    while True:
        elapsed = time.monotonic() - killed_at
        assert elapsed < RECOVERY_BUDGET, f"the API did not count in Redis again within {RECOVERY_BUDGET}s"
        response = api.get("/api/v1/bootstrap")
        assert response.status_code in (200, 429, 503), response.status_code
        if response.status_code == 200 and _remaining(response) is not None:
            break
        served_degraded += 1
        time.sleep(0.05)
    recovery = time.monotonic() - killed_at
    print(
        f"\nfailover: API counting in Redis again {recovery:.2f}s after the kill ({served_degraded} degraded answers)"
    )

    # Limits intact: the count continues from before the kill (plus what the window refilled since), not afresh.
    refill = int((time.monotonic() - counted_at) * LIMIT / 60) + 2
    assert _remaining(response) <= remaining_before + refill < fresh
    # Session intact: the same cookie is still signed in, read from the promoted replica.
    assert redis_client.exists(session_name)
    page = browser.get("/portal/")
    assert page.status_code == 200, page.status_code
    assert page.wsgi_request.user.username == "member-1"
    promoted = [node.port for node in redis_cluster.master_nodes()]
    assert victim_port not in promoted and _master_of(redis_client, limiter_keys[0]) in promoted
