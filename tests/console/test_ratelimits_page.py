"""The rate-limit counters page: filters, ZSCAN paging, top limited, resets, form-throttle lookup."""

import pytest

from audit.models import AuditEvent
from resilience.ratelimit.limiter import RateLimiter
from tenants.models import Plan, Tenant


@pytest.fixture
def acme(db):
    return Tenant.objects.create(slug="acme", name="Acme", plan=Plan.objects.create(code="p", name="P"))


def _hit(scope, tenant, identity, times=1, limit=60, burst=2):
    limiter = RateLimiter()
    for _ in range(times):
        decision = limiter.hit(scope, tenant, identity, limit=limit, burst=burst)
    return decision


def test_lists_identities_with_their_state(client, viewer, acme):
    _hit("user", acme, "42", times=5)  # burst 2: 3 admitted, then limited
    _hit("ip", None, "203.0.113.7")
    client.force_login(viewer)
    data = client.get("/admin/ops/ratelimits/", {"format": "json"}).json()
    rows = {(r["scope"], r["tenant"], r["identity"]): r for r in data["identities"]}
    assert set(rows) == {("user", "acme", "42"), ("ip", "-", "203.0.113.7")}
    limited = rows[("user", "acme", "42")]
    assert limited["limited"] is True and limited["denied"] == 2 and limited["remaining"] == 0
    assert limited["used"] == 3 and limited["limit"] == 60 and limited["reset_after"] > 0
    html = client.get("/admin/ops/ratelimits/").content.decode()
    assert "203.0.113.7" in html and "limited" in html and "Reset…" not in html  # viewer: no actions


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tenant": "acme"}, {"42", "43"}),
        ({"tenant": "-"}, {"203.0.113.7"}),
        ({"scope": "ip"}, {"203.0.113.7"}),
        ({"q": "3"}, {"43", "203.0.113.7"}),
        ({"tenant": "acme", "scope": "user", "q": "2"}, {"42"}),
    ],
)
def test_filters(client, viewer, acme, query, expected):
    _hit("user", acme, "42")
    _hit("user", acme, "43")
    _hit("ip", None, "203.0.113.7")
    client.force_login(viewer)
    data = client.get("/admin/ops/ratelimits/", {**query, "format": "json"}).json()
    assert {r["identity"] for r in data["identities"]} == expected


def test_top_limited_for_a_tenant(client, viewer, acme):
    _hit("user", acme, "calm")
    _hit("user", acme, "noisy", times=8)
    client.force_login(viewer)
    data = client.get("/admin/ops/ratelimits/", {"tenant": "acme", "format": "json"}).json()
    assert [r["identity"] for r in data["top_limited"]] == ["noisy", "calm"]
    assert "Top limited in tenant acme" in client.get("/admin/ops/ratelimits/", {"tenant": "acme"}).content.decode()


def test_bad_filters_are_400_with_the_field(client, viewer):
    client.force_login(viewer)
    response = client.get("/admin/ops/ratelimits/", {"scope": "planet", "tenant": "nope", "format": "json"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"scope", "tenant"}
    assert client.get("/admin/ops/ratelimits/", {"cursor": "x"}).status_code == 200


def test_reset_identity_needs_a_reason_and_is_audited(client, operator, acme):
    _hit("user", acme, "42", times=5)
    client.force_login(operator)
    confirm = client.get("/admin/ops/ratelimits/reset/", {"scope": "user", "tenant": "acme", "identity": "42"})
    assert confirm.status_code == 200 and "Denied" in confirm.content.decode()
    response = client.post(
        "/admin/ops/ratelimits/reset/",
        {"scope": "user", "tenant": "acme", "identity": "42", "reason": "support ticket"},
    )
    assert response.status_code == 302
    data = client.get("/admin/ops/ratelimits/", {"format": "json"}).json()
    assert data["identities"] == []
    event = AuditEvent.objects.get(action="ratelimit.reset_identity")
    assert (event.reason, event.tenant, event.actor_label) == ("support ticket", acme, "operator")
    assert _hit("user", acme, "42").allowed


def test_reset_tenant(client, operator, acme):
    for n in range(5):
        _hit("user", acme, str(n))
    _hit("ip", None, "198.51.100.1")
    client.force_login(operator)
    response = client.post("/admin/ops/ratelimits/reset-tenant/", {"tenant": "acme", "reason": "plan upgrade"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Reset 5 identities of tenant acme." in page
    assert [r["identity"] for r in client.get("/admin/ops/ratelimits/", {"format": "json"}).json()["identities"]] == [
        "198.51.100.1"
    ]
    assert AuditEvent.objects.get(action="ratelimit.reset_tenant").after == {"identities_reset": 5}


@pytest.mark.parametrize(
    "query",
    [{"scope": "x", "tenant": "acme", "identity": "1"}, {"scope": "user", "tenant": "a b", "identity": "1"}, {}],
)
def test_bad_reset_targets_are_messages(client, operator, query):
    client.force_login(operator)
    response = client.get("/admin/ops/ratelimits/reset/", query, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] == "/admin/ops/ratelimits/"


def test_reset_needs_the_permission(client, viewer):
    client.force_login(viewer)
    post = {"scope": "user", "tenant": "-", "identity": "1", "reason": "x"}
    assert client.post("/admin/ops/ratelimits/reset/", post).status_code == 403
    assert client.post("/admin/ops/ratelimits/reset-tenant/", {"tenant": "-", "reason": "xyz"}).status_code == 403


def test_form_throttle_lookup(client, viewer, customer, settings):
    from django.test import Client

    # Slow refill, so all three failures are still counted however slow the machine is.
    settings.RESILIENCE_FORM_RATE_IP = settings.RESILIENCE_FORM_RATE_USERNAME = "5/h"
    for _ in range(3):
        Client().post("/admin/login/", {"username": "customer", "password": "wrong"}, REMOTE_ADDR="192.0.2.50")
    client.force_login(viewer)
    data = client.get("/admin/ops/ratelimits/", {"ip": "192.0.2.50", "username": "customer", "format": "json"}).json()
    assert data["form_throttles"]["ip"]["count"] == 3 and data["form_throttles"]["username"]["count"] == 3
    html = client.get("/admin/ops/ratelimits/", {"ip": "192.0.2.50"}).content.decode()
    assert "Form throttles (failed sign-ins)" in html
    bad = client.get("/admin/ops/ratelimits/", {"ip": "not-an-ip", "format": "json"})
    assert bad.status_code == 400 and "ip" in bad.json()["errors"]


def test_page_when_redis_is_down(client, viewer, redis_server, settings):
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    client.force_login(viewer)
    redis_server.kill()
    html = client.get("/admin/ops/ratelimits/").content.decode()
    assert "The limiter's Redis is unreachable" in html and "Failing since" in html
    assert client.get("/admin/ops/ratelimits/", {"format": "json"}).status_code == 503
