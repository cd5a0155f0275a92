"""The breakers page: every breaker's state, forced actions with a reason, degraded storage."""

import contextlib

import pytest
from pybreaker import CircuitBreakerError

from audit.models import AuditEvent
from resilience.breakers import breaker
from resilience.breakers.selectors import breaker_state


def _trip(name):
    cb = breaker(name)
    for _ in range(cb.fail_max):
        with contextlib.suppress(ZeroDivisionError, CircuitBreakerError):  # the failure is the point
            cb.call(lambda: 1 / 0)
    return cb


def test_lists_every_breaker(client, viewer):
    breaker("upstream.acme")
    _trip("upstream.globex")
    client.force_login(viewer)
    data = client.get("/admin/ops/breakers/", {"format": "json"}).json()
    states = {b["name"]: b for b in data["breakers"]}
    assert {"redis", "upstream.acme", "upstream.globex"} <= set(states)
    assert states["upstream.globex"]["state"] == "open" and states["upstream.globex"]["opened_at"]
    assert states["upstream.globex"]["half_open_after"] and states["upstream.acme"]["state"] == "closed"
    assert data["storage_degraded"] is False
    html = client.get("/admin/ops/breakers/").content.decode()
    assert "upstream.globex" in html and "action=force_open" not in html  # viewer: no actions


@pytest.mark.parametrize(
    ("action", "state", "forced"), [("force_open", "open", "open"), ("force_close", "closed", "closed")]
)
def test_force_actions_are_audited(client, operator, action, state, forced):
    breaker("upstream.acme")
    client.force_login(operator)
    confirm = client.get("/admin/ops/breakers/action/", {"name": "upstream.acme", "action": action})
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    response = client.post(
        "/admin/ops/breakers/action/", {"name": "upstream.acme", "action": action, "reason": "incident 12"}
    )
    assert response.status_code == 302
    current = breaker_state("upstream.acme")
    assert (current.state, current.forced) == (state, forced)
    assert AuditEvent.objects.get(action=f"breaker.{action}").reason == "incident 12"
    assert "incident 12" in client.get("/admin/ops/breakers/").content.decode()


def test_reset_closes_a_tripped_breaker(client, operator):
    _trip("upstream.globex")
    client.force_login(operator)
    client.post("/admin/ops/breakers/action/", {"name": "upstream.globex", "action": "reset", "reason": "fixed"})
    assert breaker_state("upstream.globex").state == "closed"


@pytest.mark.parametrize(
    "query",
    [
        {"name": "nope", "action": "reset"},
        {"name": "redis", "action": "force_open"},
        {"name": "UP", "action": "reset"},
        {"name": "upstream.acme", "action": "explode"},
    ],
)
def test_bad_targets_are_messages(client, operator, query):
    breaker("upstream.acme")
    client.force_login(operator)
    response = client.get("/admin/ops/breakers/action/", query, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] == "/admin/ops/breakers/"


def test_actions_need_the_permission(client, viewer):
    breaker("upstream.acme")
    client.force_login(viewer)
    post = {"name": "upstream.acme", "action": "force_open", "reason": "nope"}
    assert client.post("/admin/ops/breakers/action/", post).status_code == 403
    assert breaker_state("upstream.acme").state == "closed"


def test_degraded_storage_badge_when_redis_is_down(client, viewer, redis_server, settings):
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    breaker("upstream.acme")
    client.force_login(viewer)
    redis_server.kill()
    response = client.get("/admin/ops/breakers/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "storage degraded" in html
    assert client.get("/admin/ops/breakers/", {"format": "json"}).json()["storage_degraded"] is True
