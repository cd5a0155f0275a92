"""The in-process Redis breaker: trips on connection failures, fails fast, half-opens, recovers."""

from __future__ import annotations

import time

import pytest
import redis
from django.core.cache import cache

from resilience.breakers.process import redis_breaker
from resilience.connection import get_redis
from resilience.exceptions import RedisUnavailable


def test_redis_breaker_opens_fails_fast_half_opens_and_closes(redis_server):
    redis_breaker.configure(fail_max=3, reset_timeout=0.3, success_threshold=2)
    client = get_redis()
    assert client.ping()
    redis_server.kill()
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017 - the connection error itself
            client.ping()
    assert redis_breaker.state == "open"
    attempts = redis_breaker.attempts
    for _ in range(50):
        with pytest.raises(RedisUnavailable):
            client.ping()
    assert redis_breaker.attempts == attempts  # not one of the 50 reached the network
    assert redis_breaker.rejected == 50

    redis_server.start()
    time.sleep(0.35)
    assert redis_breaker.state == "half-open"
    assert client.ping()
    assert redis_breaker.state == "half-open" and redis_breaker.success_counter == 1
    assert client.ping()
    assert redis_breaker.state == "closed"
    assert [t.new for t in redis_breaker.transitions] == ["closed", "half-open", "open"]


def test_a_failed_trial_reopens(redis_server):
    redis_breaker.configure(fail_max=1, reset_timeout=0.2, success_threshold=1)
    client = get_redis()
    redis_server.kill()
    with pytest.raises(Exception):  # noqa: B017 - the connection error itself
        client.ping()
    time.sleep(0.25)
    with pytest.raises(Exception):  # noqa: B017
        client.ping()
    assert redis_breaker.state == "open"


def test_django_cache_fails_fast_through_the_breaker(redis_server):
    redis_breaker.configure(fail_max=2, reset_timeout=60)
    cache.set("k", "v")
    redis_server.kill()
    for _ in range(5):
        with pytest.raises(redis.exceptions.ConnectionError):  # django-redis re-raises the client's error
            cache.get("k")
    assert redis_breaker.state == "open" and redis_breaker.rejected == 3


def test_command_errors_do_not_trip_it():
    redis_breaker.configure(fail_max=1)
    client = get_redis()
    client.set("s", "x")
    with pytest.raises(Exception, match="WRONGTYPE"):
        client.lpush("s", 1)
    assert redis_breaker.state == "closed"


def test_pipelines_pass_through_the_breaker(redis_server):
    redis_breaker.configure(fail_max=1, reset_timeout=60)
    client = get_redis()
    redis_server.kill()
    with pytest.raises(Exception):  # noqa: B017
        client.pipeline().ping().execute()
    with pytest.raises(RedisUnavailable):
        client.pipeline().ping().execute()


def test_disabled_breaker_lets_every_call_through(redis_server, settings):
    settings.RESILIENCE_BREAKER_ENABLED = False
    redis_breaker.configure(fail_max=1)
    client = get_redis()
    redis_server.kill()
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017
            client.ping()
    assert redis_breaker.rejected == 0


def test_reset_timeout_defaults_to_5s_not_the_upstream_timeout(settings):
    from resilience.breakers.process import ProcessBreaker

    settings.RESILIENCE_BREAKER_TIMEOUT = 30.0
    settings.RESILIENCE_BREAKER_OVERRIDES = {}
    assert redis_breaker.reset_timeout == 5.0
    assert ProcessBreaker("other").reset_timeout == 30.0  # other breakers follow CIRCUIT_BREAKER_TIMEOUT
    settings.RESILIENCE_BREAKER_OVERRIDES = {"redis": {"reset_timeout": 2.0}}
    assert redis_breaker.reset_timeout == 2.0  # CIRCUIT_BREAKER_OVERRIDES still wins
    assert redis_breaker.fail_max == settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD
