"""Upstream probes through the tenant's breaker (a local http.server stand-in) and audited operator actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from pybreaker import CircuitBreakerError

from audit.models import AuditEvent
from resilience.breakers import breaker, upstream_check
from resilience.breakers.selectors import breaker_events, breaker_state
from resilience.breakers.services import breaker_force_close, breaker_force_open, breaker_reset
from tenants.models import Plan, Tenant


@pytest.fixture
def tenant(db, upstream):
    server, _ = upstream
    plan = Plan.objects.create(code="p", name="P")
    return Tenant.objects.create(
        slug="acme", name="Acme", plan=plan, upstream_url=f"http://127.0.0.1:{server.server_address[1]}/"
    )


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", is_staff=True)


def test_upstream_check_reports_status_and_latency(tenant):
    result = upstream_check(tenant)
    assert result.ok and result.status_code == 200
    assert result.body == {"status": "stable", "agent_type": "claude"}
    assert result.breaker == "upstream.acme" and result.breaker_state == "closed"
    assert result.latency_ms > 0


def test_upstream_5xx_opens_the_tenant_breaker_then_probes_fail_fast(tenant, upstream, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 3
    _, handler = upstream
    handler.status = 503
    results = [upstream_check(tenant) for _ in range(5)]
    assert [r.ok for r in results] == [False] * 5
    assert results[2].breaker_state == "open"
    assert results[4].error.startswith("Circuit open")
    assert handler.hits == 3  # the last two never reached the upstream


def test_upstream_refused_connection_counts_as_failure(db, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 1
    plan = Plan.objects.create(code="q", name="Q")
    from agentapi_admin.redis_process import free_port

    gone = Tenant.objects.create(slug="gone", name="Gone", plan=plan, upstream_url=f"http://127.0.0.1:{free_port()}")
    result = upstream_check(gone)
    assert not result.ok and result.status_code is None and "ConnectionRefusedError" in result.error
    assert breaker("upstream.gone").current_state == "open"


def test_upstream_4xx_is_reported_but_does_not_trip(tenant, upstream, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 1
    _, handler = upstream
    handler.status = 401
    result = upstream_check(tenant)
    assert not result.ok and result.status_code == 401 and result.error == "HTTP 401"
    assert result.breaker_state == "closed"


def test_tenant_without_upstream_url(db):
    plan = Plan.objects.create(code="r", name="R")
    result = upstream_check(Tenant.objects.create(slug="none", name="None", plan=plan))
    assert not result.ok and "No upstream URL" in result.error


def test_force_open_fails_fast_until_reset_and_is_audited(tenant, upstream, staff):
    _, handler = upstream
    upstream_check(tenant)  # registers the breaker
    breaker_force_open(name="upstream.acme", actor=staff, reason="upstream maintenance")
    state = breaker_state("upstream.acme")
    assert (state.state, state.forced) == ("open", "open")
    hits = handler.hits
    result = upstream_check(tenant)
    assert not result.ok and "forced open" in result.error and handler.hits == hits
    breaker_reset(name="upstream.acme", actor=staff, reason="maintenance over")
    assert upstream_check(tenant).ok
    assert breaker_state("upstream.acme").forced == ""
    events = AuditEvent.objects.filter(object_id="upstream.acme").order_by("id")
    assert [e.action for e in events] == ["breaker.force_open", "breaker.reset"]
    assert events[0].before == {"state": "closed", "forced": ""}
    assert events[0].after == {"state": "open", "forced": "open"}
    assert events[0].reason == "upstream maintenance" and events[0].actor_label == "ops"
    recorded = breaker_events("upstream.acme")
    assert [(e.new, e.actor) for e in recorded] == [("closed", "ops"), ("open", "ops")]  # once each, newest first


def test_force_close_lets_calls_through_without_counting(tenant, upstream, staff, settings):
    settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD = 1
    _, handler = upstream
    upstream_check(tenant)
    breaker_force_close(name="upstream.acme", actor=staff, reason="false alarms")
    handler.status = 500
    for _ in range(3):
        assert upstream_check(tenant).status_code is None
    assert handler.hits == 4 and breaker("upstream.acme").current_state == "closed"


def test_operator_actions_need_a_reason_and_a_known_breaker(staff, tenant):
    upstream_check(tenant)
    with pytest.raises(ValueError, match="reason"):
        breaker_force_open(name="upstream.acme", actor=staff, reason=" ")
    with pytest.raises(ValueError, match="No breaker"):
        breaker_force_open(name="upstream.nobody", actor=staff, reason="x")
    with pytest.raises(ValueError, match="process"):
        breaker_force_open(name="redis", actor=staff, reason="x")
    assert not AuditEvent.objects.exists()


def test_forced_open_is_shared_with_other_processes(tenant, staff):
    upstream_check(tenant)
    breaker_force_open(name="upstream.acme", actor=staff, reason="incident")
    from resilience.breakers.registry import forget_breakers

    forget_breakers()
    with pytest.raises(CircuitBreakerError):
        breaker("upstream.acme").call(lambda: "never")
