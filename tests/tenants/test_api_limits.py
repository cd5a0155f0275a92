"""Who pays for a service-API request: the tenant for a valid key, the client address otherwise; only served counts."""

import pytest
from django.test import Client
from django.utils import timezone

from resilience.ratelimit import state_key
from tenants.api.views import GATEWAY_ROUTES, TenantKey, api
from tenants.keys import route_key, usage_key, usage_legacy_key
from tenants.services.apikeys import apikey_hash, apikey_revoke

from .factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db

BIG = {"rate_limit_per_minute": 1000, "burst": 100}


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def ip_budget(settings):
    """The `ip` scope (no tenant) allows 5/min with a burst of 10: at most 16 in any minute."""
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 5
    settings.RESILIENCE_RATE_LIMIT_BURST = 10
    return 5 + 10 + 1


def statuses(client, path, n, authorization=None, **extra):
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    return [client.get(path, **extra).status_code for _ in range(n)]


@pytest.mark.parametrize(
    "path", ["/api/v1/openapi.json", "/api/v1/bootstrap", "/api/v1/flags/beta", "/api/v1/nowhere", "/api/v2/x"]
)
def test_a_bearer_aak_header_does_not_lift_the_ip_limit(client, ip_budget, path):
    answers = statuses(client, path, 320, "Bearer aak_x")
    assert answers.count(429) > 0 and len(answers) - answers.count(429) <= ip_budget, answers[:20]
    assert answers[-1] == 429


@pytest.mark.parametrize(
    "authorization", [None, "Bearer aak_x", "Basic Zm9vOmJhcg==", "Bearer aak_00000000_" + "A" * 43, "revoked"]
)
def test_requests_without_a_valid_key_are_limited_per_ip(client, ip_budget, authorization):
    if authorization == "revoked":
        api_key, secret = make_key(make_tenant("acme", plan=make_plan(**BIG)))
        apikey_revoke(api_key=api_key, actor=None)
        authorization = f"Bearer {secret}"
    answers = statuses(client, "/api/v1/bootstrap", 40, authorization)
    assert set(answers[:11]) == {401}  # burst + 1 back to back
    assert answers[-1] == 429 and len(answers) - answers.count(429) <= ip_budget


def test_a_flood_of_made_up_keys_is_refused_before_the_database(client, settings, django_assert_num_queries):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1
    settings.RESILIENCE_RATE_LIMIT_BURST = 0
    first = "aak_11111111_" + "B" * 43
    assert client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    from resilience.connection import get_redis

    made_up = "aak_22222222_" + "C" * 43
    with django_assert_num_queries(0):
        refused = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {made_up}")
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert not get_redis().exists(route_key(apikey_hash(made_up)))


def test_tenants_behind_one_address_each_get_their_own_plan(client, settings, redis_client):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1  # the `ip` scope: one request a minute
    settings.RESILIENCE_RATE_LIMIT_BURST = 0
    secrets = [make_key(make_tenant(slug, plan=make_plan(**BIG)))[1] for slug in ("acme", "globex")]
    for secret in secrets:
        answers = statuses(client, "/api/v1/bootstrap", 30, f"Bearer {secret}")
        assert set(answers) == {200}
    served = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secrets[0]}")
    assert served["RateLimit-Limit"] == "1000"  # the plan's, not the address's
    assert not redis_client.exists(state_key("ip", None, "127.0.0.1"))


def test_a_600_per_minute_plan_is_reachable_from_one_address(client, settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 60  # the documented defaults for the `ip` scope
    settings.RESILIENCE_RATE_LIMIT_BURST = 10
    _, secret = make_key(make_tenant("acme", plan=make_plan(rate_limit_per_minute=600, burst=599)))
    answers = statuses(client, "/api/v1/bootstrap", 600, f"Bearer {secret}")
    assert set(answers) == {200}


def test_a_refused_scope_spends_no_tenant_budget_nor_quota(client, settings, redis_client):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 100
    settings.RESILIENCE_RATE_LIMIT_BURST = 100
    tenant = make_tenant("acme", plan=make_plan(rate_limit_per_minute=2, burst=2, daily_quota=2))
    _, flags_only = make_key(tenant, scopes=["flags:read"])
    _, full = make_key(tenant)
    for _ in range(5):
        refused = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {flags_only}")
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    day = timezone.now().strftime("%Y%m%d")
    assert redis_client.hgetall(usage_key(tenant.slug, tenant.pk, day)) == {"refused_scope": "5"}
    assert not redis_client.exists(state_key("tenant", "acme", "acme"))
    # The whole quota (and the burst) is still there for the key that may read the document.
    assert statuses(client, "/api/v1/bootstrap", 2, f"Bearer {full}") == [200, 200]
    assert client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {full}").json()["error"] == "quota_exceeded"


def test_a_refused_scope_spends_the_address_budget(client, settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1
    settings.RESILIENCE_RATE_LIMIT_BURST = 1
    _, flags_only = make_key(make_tenant("acme", plan=make_plan(**BIG)), scopes=["flags:read"])
    assert statuses(client, "/api/v1/bootstrap", 3, f"Bearer {flags_only}") == [403, 403, 429]


def test_the_daily_quota_keeps_what_was_counted_before_the_upgrade(client, redis_client):
    tenant = make_tenant("acme", plan=make_plan(**BIG, daily_quota=5))
    _, secret = make_key(tenant)
    day = timezone.now().strftime("%Y%m%d")
    # Served under the usage name from before hash tags, earlier the same day.
    redis_client.hset(usage_legacy_key(tenant.pk, day), mapping={"requests": 4, "rate_limited": 2})
    assert statuses(client, "/api/v1/bootstrap", 2, f"Bearer {secret}") == [200, 429]
    assert redis_client.hgetall(usage_key(tenant.slug, tenant.pk, day)) == {
        "requests": "5",
        "rate_limited": "2",
        "quota_exceeded": "1",
    }
    assert not redis_client.exists(usage_legacy_key(tenant.pk, day))
    assert 0 < redis_client.ttl(usage_key(tenant.slug, tenant.pk, day)) <= 8 * 86400


def test_unknown_flags_and_invalid_requests_are_not_usage(client, redis_client):
    tenant = make_tenant("acme", plan=make_plan(rate_limit_per_minute=1000, burst=100, daily_quota=1))
    _, secret = make_key(tenant)
    make_flag("beta")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/flags/nope", **auth).status_code == 404
    assert client.get("/api/v1/flags/Bad!Key", **auth).status_code == 422
    assert client.get("/api/v1/flags/beta?subject=" + "x" * 201, **auth).status_code == 422
    assert client.get("/api/v1/flags/beta?subject=", **auth).status_code == 422
    day = timezone.now().strftime("%Y%m%d")
    assert redis_client.hget(usage_key(tenant.slug, tenant.pk, day), "requests") is None
    assert client.get("/api/v1/flags/beta?subject=u1", **auth).status_code == 200  # the quota of 1 is intact
    assert redis_client.hget(usage_key(tenant.slug, tenant.pk, day), "requests") == "1"


def test_a_post_to_a_gateway_route_is_limited_by_the_middleware(client, ip_budget):
    answers = [client.post("/api/v1/bootstrap").status_code for _ in range(40)]
    assert answers[0] == 405 and answers[-1] == 429


def test_gateway_routes_are_exactly_the_tenant_key_operations():
    tenant_key_routes = {
        operation.view_func.__name__
        for router in (api.default_router,)
        for path_view in router.path_operations.values()
        for operation in path_view.operations
        if operation.auth_callbacks and all(isinstance(auth, TenantKey) for auth in operation.auth_callbacks)
    }
    assert tenant_key_routes == set(GATEWAY_ROUTES)


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_redis_disabled_limits_the_api_in_process(client, settings, redis_client, caplog, fail_mode):
    settings.RESILIENCE_REDIS_ENABLED = False
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = fail_mode  # nothing to fail over: the limits are in process
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 5  # the `ip` scope
    settings.RESILIENCE_RATE_LIMIT_BURST = 2
    slug = f"nored-{fail_mode}"
    tenant = make_tenant(slug, plan=make_plan(rate_limit_per_minute=10, burst=4))
    _, secret = make_key(tenant)
    answers = [client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}") for _ in range(25)]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [200] * 5 and codes[-1] == 429 and codes.count(200) <= 6, codes
    assert answers[0]["RateLimit-Limit"] == "10" and answers[-1].json()["error"] == "rate_limited"
    # Without a valid key the client address is limited, in process too.
    made_up = f"Bearer aak_33333333_{'D' * 43}"
    refused = statuses(client, "/api/v1/bootstrap", 6, made_up, REMOTE_ADDR=f"10.77.0.{len(fail_mode)}")
    assert refused == [401, 401, 401, 429, 429, 429]
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "without Redis" in r.getMessage()]
    assert redis_client.dbsize() == 0


def test_sparse_traffic_over_many_keys_stays_near_ten_redis_commands_per_request(redis_client):
    """Each key is used every few seconds (rotating over many keys): the limiter's index is not rewritten each time."""
    from tenants.api.gateway import gateway_call

    plan = make_plan(rate_limit_per_minute=1_000_000, burst=1000, daily_quota=10_000_000)
    secrets = [make_key(make_tenant(plan=plan))[1] for _ in range(20)]
    now_ms = 1_800_000_000_000
    for secret in secrets:  # cold: fill every entry and document first
        assert gateway_call(secret, now_ms=now_ms).outcome == "ok"
    before = redis_client.info("commandstats")
    requests = 0
    for _ in range(10):  # 10 rounds 4 s apart: every key is idle for longer than its tolerance
        now_ms += 4_000
        for secret in secrets:
            assert gateway_call(secret, now_ms=now_ms).outcome == "ok"
            requests += 1
    after = redis_client.info("commandstats")
    commands = sum(
        stat["calls"] - before.get(name, {}).get("calls", 0) for name, stat in after.items() if name != "cmdstat_info"
    )
    assert redis_client.info("commandstats")["cmdstat_zadd"]["calls"] == before["cmdstat_zadd"]["calls"]
    assert commands / requests <= 10, commands / requests
