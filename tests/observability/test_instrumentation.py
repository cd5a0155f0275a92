"""Each decision point counts what it decided: gateway, limiter, form throttle, breakers, Redis errors, sessions."""

from __future__ import annotations

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings

from agentapi_admin import metrics
from agentapi_admin.metrics import redis_error_kind
from resilience.breakers.process import ProcessBreaker
from resilience.breakers.registry import breaker
from tests.tenants.factories import make_key, make_plan, make_tenant

from .conftest import TOKEN, sample

pytestmark = pytest.mark.django_db


def bootstrap(client, secret, **headers):
    return client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)


def test_gateway_outcomes_cold_fills_and_http_requests_are_counted():
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    client = Client()
    before = {
        name: sample("agentapi_gateway_requests_total", outcome=name) for name in ("ok", "not_modified", "unknown")
    }
    fills = sample("agentapi_gateway_cold_fills_total")
    http_ok = sample("agentapi_http_requests_total", route="/api/v1/bootstrap", method="GET", status="200")
    first = bootstrap(client, secret)
    bootstrap(client, secret)
    assert bootstrap(client, secret, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert bootstrap(client, "aak_11111111_" + "B" * 43).status_code == 401
    assert sample("agentapi_gateway_requests_total", outcome="ok") - before["ok"] == 2
    assert sample("agentapi_gateway_requests_total", outcome="not_modified") - before["not_modified"] == 1
    assert sample("agentapi_gateway_requests_total", outcome="unknown") - before["unknown"] == 1
    assert sample("agentapi_gateway_cold_fills_total") - fills == 2  # the key's first use, the unknown key
    assert sample("agentapi_http_requests_total", route="/api/v1/bootstrap", method="GET", status="200") - http_ok == 2
    assert sample("agentapi_http_request_duration_seconds_count", route="/api/v1/bootstrap", method="GET") >= 4


def test_limiter_refusals_are_counted_by_scope(settings):
    tenant = make_tenant("acme", plan=make_plan("tiny", rate_limit_per_minute=1, burst=0))
    _, secret = make_key(tenant)
    client = Client()
    limited = sample("agentapi_ratelimit_decisions_total", scope="tenant", result="limited")
    gate = sample("agentapi_gateway_requests_total", outcome="limited")
    answers = [bootstrap(client, secret).status_code for _ in range(4)]
    assert answers == [200, 429, 429, 429]
    assert sample("agentapi_ratelimit_decisions_total", scope="tenant", result="limited") - limited == 3
    assert sample("agentapi_gateway_requests_total", outcome="limited") - gate == 3
    # The middleware's scopes (requests without a tenant key) count through the same family.
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE, settings.RESILIENCE_RATE_LIMIT_BURST = 1, 0
    ip_limited = sample("agentapi_ratelimit_decisions_total", scope="ip", result="limited")
    statuses = [client.get("/api/v1/bootstrap", REMOTE_ADDR="10.7.7.7").status_code for _ in range(3)]
    assert statuses == [401, 429, 429]
    assert sample("agentapi_ratelimit_decisions_total", scope="ip", result="limited") - ip_limited == 2
    assert sample("agentapi_http_requests_total", route="/api/v1/bootstrap", method="GET", status="429") >= 5


def test_fail_open_decisions_are_counted_while_redis_is_down(redis_server, settings):
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = "open"
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    before = sample("agentapi_ratelimit_decisions_total", scope="tenant", result="fail_open")
    ip_before = sample("agentapi_ratelimit_decisions_total", scope="ip", result="fail_open")
    redis_server.kill()
    assert bootstrap(Client(), secret).status_code == 200
    assert Client().get("/api/v1/bootstrap").status_code == 401  # the middleware's limiter fails open too
    assert sample("agentapi_ratelimit_decisions_total", scope="tenant", result="fail_open") - before == 1
    assert sample("agentapi_ratelimit_decisions_total", scope="ip", result="fail_open") - ip_before == 1


@override_settings(RESILIENCE_FORM_RATE_USERNAME="2/h", RESILIENCE_FORM_RATE_IP="100/h")
def test_form_throttle_refusals_are_counted():
    get_user_model().objects.create_superuser("root", "root@example.com", "right-pass-123")
    before = sample("agentapi_form_throttle_refusals_total", group="login", reason="username")
    answers = [
        Client().post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR=f"10.9.9.{n}")
        for n in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert sample("agentapi_form_throttle_refusals_total", group="login", reason="username") - before == 2


def test_the_redis_breaker_transitions_and_redis_errors_are_counted(redis_server):
    opened = sample("agentapi_breaker_transitions_total", breaker="redis", to="open")
    refused = sample("agentapi_redis_errors_total", kind="connection")
    fast = sample("agentapi_redis_errors_total", kind="breaker_open")
    redis_server.kill()
    kinds = []
    for _ in range(8):
        with pytest.raises(Exception) as raised:  # django-redis wraps the ConnectionError
            cache.get("anything")
        kinds.append(redis_error_kind(raised.value.__cause__ or raised.value))
    assert kinds == ["connection"] * 5 + ["breaker_open"] * 3  # fail_max, then the breaker
    assert sample("agentapi_breaker_transitions_total", breaker="redis", to="open") - opened == 1
    assert sample("agentapi_breaker_state", breaker="redis", state="open") == 1
    # The counters are the process's: a background thread (the cache-invalidation redelivery loop)
    # that meets the open breaker while Redis is down is counted too, so these are lower bounds.
    assert sample("agentapi_redis_errors_total", kind="connection") - refused >= 5
    assert sample("agentapi_redis_errors_total", kind="breaker_open") - fast >= 3


def test_a_named_breaker_state_is_read_at_scrape_time_and_transitions_counted(metrics_token):
    named = breaker("upstream.metrics-test", fail_max=1)
    before = sample("agentapi_breaker_transitions_total", breaker="upstream.metrics-test", to="open")

    def fail():
        raise OSError("upstream down")

    with pytest.raises(Exception):  # noqa: B017 - pybreaker raises CircuitBreakerError on the tripping call
        named.call(fail)
    assert sample("agentapi_breaker_transitions_total", breaker="upstream.metrics-test", to="open") - before == 1
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'agentapi_breaker_state{breaker="upstream.metrics-test",state="open"} 1.0' in body
    assert 'agentapi_breaker_state{breaker="redis",state="closed"} 1.0' in body


def test_process_breaker_reports_its_own_name():
    local = ProcessBreaker("metrics-probe", defaults={"fail_max": 1})
    local.reset()
    with pytest.raises(redis.exceptions.ConnectionError):
        local.call(_refuse)
    assert sample("agentapi_breaker_state", breaker="metrics-probe", state="open") == 1


def _refuse():
    raise redis.exceptions.ConnectionError("refused")


def test_session_store_failures_are_counted(redis_server):
    user = get_user_model().objects.create_user("someone", "s@example.com", "right-pass-123")

    def failures():
        return sum(sample("agentapi_session_store_failures_total", operation=op) for op in ("save", "request"))

    before = failures()
    client = Client()
    redis_server.kill()
    response = client.post("/portal/login/", {"username": user.username, "password": "right-pass-123"})
    assert response.status_code == 503
    assert failures() - before == 1


def test_redis_error_kinds_are_bounded():
    from resilience.exceptions import RedisUnavailable

    assert metrics.redis_error_kind(RedisUnavailable("open")) == "breaker_open"
    assert metrics.redis_error_kind(redis.exceptions.TimeoutError()) == "timeout"
    assert metrics.redis_error_kind(redis.exceptions.OutOfMemoryError()) == "oom"
    assert metrics.redis_error_kind(redis.exceptions.ReadOnlyError()) == "readonly"
    assert metrics.redis_error_kind(redis.exceptions.ConnectionError()) == "connection"
    assert metrics.redis_error_kind(redis.exceptions.ResponseError()) == "response"
    assert metrics.redis_error_kind(redis.exceptions.DataError()) == "other"


def test_redis_server_gauges_and_maintenance_lag_are_exported(metrics_token):
    from django.core.management import call_command

    call_command("run_maintenance", "--once", json=True)
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    for family in (
        "agentapi_redis_up 1.0",
        "agentapi_redis_ping_seconds ",
        "agentapi_redis_used_memory_bytes ",
        "agentapi_redis_maxmemory_bytes ",
        "agentapi_redis_evicted_keys_total ",
        "agentapi_redis_ops_per_second ",
        "agentapi_redis_connected_clients ",
        'agentapi_maintenance_lag_seconds{task="cleanup_sessions"}',
        'agentapi_maintenance_last_success_timestamp_seconds{task="flush_usage"}',
        'agentapi_maintenance_lag_seconds{task="history_sample"}',
    ):
        assert family in body, family
