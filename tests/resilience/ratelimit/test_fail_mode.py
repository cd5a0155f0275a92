"""RATE_LIMIT_FAIL_MODE decides when Redis raises and when a client returns nothing."""

from __future__ import annotations

import pytest
import redis

from resilience.ratelimit import RateLimiter, ratelimit_response


class SwallowingRedis(redis.Redis):
    """A real client that, like cache wrappers with IGNORE_EXCEPTIONS, returns None instead of raising."""

    def execute_command(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except redis.exceptions.ConnectionError:
            return None


@pytest.mark.parametrize("mode", ["open", "closed"])
@pytest.mark.parametrize("client_kind", ["raises", "returns-nothing"])
def test_fail_mode_when_redis_is_down(redis_server, mode, client_kind):
    cls = redis.Redis if client_kind == "raises" else SwallowingRedis
    client = cls(port=redis_server.port, socket_connect_timeout=0.5, retry=None)
    limiter = RateLimiter(lambda: client, fail_mode=mode)
    assert limiter.hit("user", None, "u", limit=5, burst=0).allowed  # Redis up: a real decision
    redis_server.kill()
    decision = limiter.hit("user", None, "u", limit=5, burst=0)
    assert decision.degraded
    assert decision.allowed is (mode == "open")
    if mode == "closed":
        response = ratelimit_response(decision)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert b"rate_limiter_unavailable" in response.content


def test_limiter_recovers_when_redis_returns(redis_server):
    client = redis.Redis(port=redis_server.port, socket_connect_timeout=0.5)
    limiter = RateLimiter(lambda: client, fail_mode="closed")
    redis_server.kill()
    assert limiter.hit("user", None, "u", limit=5, burst=0).degraded
    redis_server.start()  # empty server: the script cache is gone too (NOSCRIPT path)
    decision = limiter.hit("user", None, "u", limit=5, burst=0)
    assert decision.allowed and not decision.degraded
