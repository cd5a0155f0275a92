"""Admin API, operations: rate-limit counters (read, reset) and circuit breakers (read, force, reset)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from resilience.breakers.registry import breaker
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import grant, make_operator, make_token
from tests.tenants.factories import make_key, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_api():
    user = make_operator("oncall", scopes=["ops:read", "ops:write"])
    return AdminApi(make_token(user, scopes=["ops:read", "ops:write"])[1])


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=1)
def test_counters_are_listed_and_one_identity_reset(ops_api, plan, client):
    tenant = make_tenant("acme", plan=plan)
    _, secret = make_key(tenant)
    for _ in range(3):
        client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    with override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=100_000, RESILIENCE_RATE_LIMIT_BURST=10_000):
        listed = ops_api.get("/ratelimits?tenant=acme&scope=tenant")
        assert listed.status_code == 200, listed.content
        (state,) = listed.json()["items"]
        assert state["identity"] == "acme" and state["limited"] is True and state["denied"] >= 1
        reset = ops_api.post(
            "/ratelimits/reset", {"scope": "tenant", "tenant": "acme", "identity": "acme", "reason": "support call"}
        )
        assert reset.status_code == 200 and reset.json() == {"reset": True}
        assert ops_api.get("/ratelimits?tenant=acme&scope=tenant").json()["items"] == []
    event = AuditEvent.objects.get(action="ratelimit.reset_identity")
    assert event.actor_label == "oncall" and event.reason.startswith("support call [via staff token sat_")
    assert client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_counter_refusals(ops_api):
    problem(ops_api.get("/ratelimits?cursor=abc"), 400, "invalid_request", "cursor")
    problem(ops_api.get("/ratelimits?scope=planet"), 400, "invalid_request", "scope")
    problem(ops_api.get("/ratelimits?tenant=%7B"), 400, "invalid_request", "tenant")
    body = {"scope": "tenant", "tenant": "nope", "identity": "x", "reason": "r"}
    problem(ops_api.post("/ratelimits/reset", body), 422, "invalid_request", "tenant")
    blank = {**body, "tenant": "-", "reason": "   "}
    problem(ops_api.post("/ratelimits/reset", blank), 422, "invalid_request", "reason")


def test_breakers_are_read_forced_and_reset(ops_api):
    breaker("upstream.acme")
    names = [b["name"] for b in ops_api.get("/breakers").json()]
    assert "upstream.acme" in names and names[0] == "redis"
    opened = ops_api.post("/breakers/upstream.acme/force-open", {"reason": "incident 42"})
    assert opened.status_code == 200 and opened.json()["state"] == "open" and opened.json()["forced"] == "open"
    assert ops_api.get("/breakers/upstream.acme").json()["forced"] == "open"
    closed = ops_api.post("/breakers/upstream.acme/force-close", {"reason": "incident 42"})
    assert closed.json()["forced"] == "closed"
    reset = ops_api.post("/breakers/upstream.acme/reset", {"reason": "over"})
    assert reset.json()["forced"] == "" and reset.json()["state"] == "closed"
    actions = AuditEvent.objects.filter(action__startswith="breaker.").values_list("action", flat=True)
    assert sorted(actions) == ["breaker.force_close", "breaker.force_open", "breaker.reset"]


def test_breaker_refusals(ops_api):
    problem(ops_api.get("/breakers/nope"), 404, "not_found", "name")
    problem(ops_api.post("/breakers/nope/force-open", {"reason": "x"}), 404, "not_found", "name")
    problem(ops_api.post("/breakers/redis/force-open", {"reason": "x"}), 409, "process_breaker", "name")
    breaker("upstream.acme")
    problem(ops_api.post("/breakers/upstream.acme/force-open", {}), 422, "invalid_request", "reason")


def test_acting_needs_the_operate_permission_reading_only_staff(plan):
    reader = make_operator("watcher", scopes=["ops:read"])
    _, secret = make_token(reader, scopes=["ops:read"])
    watcher = AdminApi(secret)
    breaker("upstream.acme")
    assert watcher.get("/breakers").status_code == 200
    problem(watcher.post("/breakers/upstream.acme/force-open", {"reason": "x"}), 403, "insufficient_scope")
    operator = make_operator("lost", scopes=["ops:read", "ops:write"])
    _, secret = make_token(operator, scopes=["ops:read", "ops:write"])
    operator.user_permissions.clear()
    body = problem(AdminApi(secret).post("/breakers/upstream.acme/reset", {"reason": "x"}), 403, "permission_denied")
    assert "console.operate" in body["detail"]
    grant(operator, "console.operate")
    assert AdminApi(secret).post("/breakers/upstream.acme/reset", {"reason": "x"}).status_code == 200


def test_ops_answer_503_while_redis_is_down(ops_api, redis_server):
    redis_server.kill()
    try:
        response = ops_api.get("/ratelimits")
    finally:
        redis_server.restart()
    problem(response, 503, "redis_unavailable")
    assert response["Retry-After"] == "1"
