"""The limiter over HTTP: middleware, decorator, per-plan limits, trusted proxies, switches."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from agentapi_admin.client_address import client_ip_identity
from resilience.ratelimit.policy import limits_for
from tenants.models import Plan, Tenant

pytestmark = pytest.mark.urls("tests.resilience.ratelimit.urls")


@pytest.fixture
def tenants(db):
    small = Plan.objects.create(code="small", name="Small", rate_limit_per_minute=30, burst=2)
    default = Plan.objects.create(code="default", name="Default")
    return {
        "acme": Tenant.objects.create(slug="acme", name="Acme", plan=small),
        "globex": Tenant.objects.create(slug="globex", name="Globex", plan=default),
    }


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=3)
def test_api_paths_get_headers_then_429_problem(client):
    answers = [client.get("/api/ping") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[0]["RateLimit-Limit"] == "60"
    assert [a["RateLimit-Remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
    denied = answers[-1]
    # Under /api/ every error is an RFC 9457 problem, keeping the `error` member clients read.
    assert denied["Content-Type"] == "application/problem+json"
    assert denied.json()["error"] == "rate_limited" and denied.json()["status"] == 429
    assert denied["Retry-After"] == "1"
    assert denied["RateLimit-Remaining"] == "0"


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=0)
def test_each_ip_has_its_own_allowance(client):
    assert client.get("/api/ping", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert client.get("/api/ping", REMOTE_ADDR="10.0.0.1").status_code == 429
    assert client.get("/api/ping", REMOTE_ADDR="10.0.0.2").status_code == 200


@override_settings(RESILIENCE_RATE_LIMIT_BURST=0)
def test_paths_outside_rate_limit_paths_are_not_limited(client):
    answers = [client.get("/open/ping") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0]


@override_settings(RESILIENCE_RATE_LIMIT_ENABLED=False, RESILIENCE_RATE_LIMIT_BURST=0)
def test_rate_limit_enabled_false_turns_it_off(client, redis_client):
    answers = [client.get("/api/ping") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert "RateLimit-Limit" not in answers[0]
    assert redis_client.dbsize() == 0


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=10)
def test_plan_limits_override_the_environment(client, tenants):
    acme = [client.get("/svc/tenant", HTTP_X_TENANT="acme") for _ in range(4)]
    assert [a.status_code for a in acme] == [200, 200, 200, 429]  # plan: burst 2 -> 3 back to back
    assert acme[0]["RateLimit-Limit"] == "30"
    assert acme[-1]["Retry-After"] == "2"  # 60 s / 30
    globex = [client.get("/svc/tenant", HTTP_X_TENANT="globex") for _ in range(12)]
    assert [a.status_code for a in globex].count(200) == 11  # env defaults: burst 10 -> 11
    assert globex[0]["RateLimit-Limit"] == "60"


@override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=10)
def test_limits_for_inherits_each_empty_plan_field(db):
    half = Plan.objects.create(code="half", name="Half", rate_limit_per_minute=120)
    tenant = Tenant.objects.create(slug="t", name="T", plan=half)
    assert (limits_for(tenant).per_minute, limits_for(tenant).burst) == (120, 10)
    assert (limits_for(None).per_minute, limits_for(None).burst) == (60, 10)


def _request(remote="10.0.0.9", forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.9", "1.2.3.4", "10.0.0.9"),  # no proxy trusted: a client cannot pick its address
        (1, "10.0.0.9", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the one proxy appended the real client
        (2, "10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.5", "1.2.3.4"),
        (2, "10.0.0.9", "1.2.3.4", "10.0.0.9"),  # fewer entries than proxies: not trusted
        (1, "10.0.0.9", "not-an-ip", "10.0.0.9"),
        (["10.0.0.0/8"], "10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.5", "1.2.3.4"),
        (["10.0.0.0/8"], "8.8.8.8", "1.2.3.4", "8.8.8.8"),  # the peer is not our proxy
        (1, "10.0.0.9", "[2001:db8:1:2::7]:443", "2001:db8:1:2::/64"),
        (0, "2001:db8::1", None, "2001:db8::/64"),
    ],
)
def test_client_ip_honours_trusted_proxies(trusted, remote, forwarded, expected):
    with override_settings(RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES=trusted):
        assert client_ip_identity(_request(remote, forwarded)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 0), ("2", 2), ("10.0.0.0/8, 192.168.1.5", ["10.0.0.0/8", "192.168.1.5/32"])],
)
def test_trusted_proxies_setting_is_parsed(load_settings, value, expected):
    loaded, error = load_settings(
        ["RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES"], RATE_LIMIT_TRUSTED_PROXIES=value, DEBUG="true"
    )
    assert loaded is not None, error
    assert loaded["RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES"] == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [("RATE_LIMIT_TRUSTED_PROXIES", "10.0.0.0/33"), ("RATE_LIMIT_FORM_IP_RATE", "5 per minute")],
)
def test_bad_rate_limit_settings_name_the_variable(load_settings, name, value):
    loaded, error = load_settings(["DEBUG"], **{name: value, "DEBUG": "true"})
    assert loaded is None
    assert name in error and "ImproperlyConfigured" in error


def test_redis_disabled_limits_per_process_instead_of_failing(client, settings, redis_client):
    settings.RESILIENCE_REDIS_ENABLED = False
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = "closed"
    settings.RESILIENCE_RATE_LIMIT_BURST = 1
    answers = [client.get("/api/ping", REMOTE_ADDR="10.8.8.8") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # enforced, not 503 from the fail mode
    assert answers[0]["RateLimit-Remaining"] == "1"
    assert redis_client.dbsize() == 0
