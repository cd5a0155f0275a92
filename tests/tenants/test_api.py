"""The service API: auth, isolation, ETag/304, suspension, limits, usage and every 4xx body."""

import json
import threading
from datetime import timedelta

import pytest
import redis
from django.test import Client
from django.utils import timezone

from tenants.api import gateway
from tenants.api.gateway import _fill, _run, gateway_keys
from tenants.cache import versions_publish
from tenants.keys import apikey_key, route_key, usage_key
from tenants.models import ApiKey, Tenant
from tenants.services.apikeys import apikey_hash, apikey_revoke
from tenants.services.flags import flag_set_override
from tenants.services.tenants import tenant_offboard, tenant_resume, tenant_suspend

from .factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client()


def get(client, path, secret=None, **headers):
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client.get(path, **headers)


def assert_error(response, status, error, field=None):
    assert response.status_code == status, response.content
    # RFC 9457 problem details, keeping the members clients read before: error, detail, field.
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["error"] == error and body["detail"]
    assert body["status"] == status and body["title"] and body["type"].endswith(f"/{error}")
    if field:
        assert body["field"] == field
    return body


@pytest.fixture
def acme():
    tenant = make_tenant("acme", settings={"agent_type": "goose"})
    _, secret = make_key(tenant)
    return tenant, secret


def test_bootstrap_returns_config_limits_and_flags(client, acme):
    _, secret = acme
    make_flag("beta", default=True)
    response = get(client, "/api/v1/bootstrap", secret)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["slug"] == "acme" and body["tenant"]["status"] == "trial"
    assert body["settings"]["agent_type"] == "goose" and body["settings"]["max_concurrent_agents"] == 5
    assert body["flags"]["beta"]["enabled"] is True and body["flags"]["beta"]["reason"] == "default"
    assert set(body["limits"]) == {"requests_per_minute", "burst", "daily_quota"}
    assert response["ETag"].startswith('"') and response["RateLimit-Limit"]


def test_a_tenants_key_never_reads_another_tenants_flags(client, acme, redis_client):
    tenant_a, secret_a = acme
    tenant_b = make_tenant("globex")
    _, secret_b = make_key(tenant_b)
    beta = make_flag("beta")
    flag_set_override(tenant=tenant_b, flag=beta, enabled=True, actor=None)
    body_a = get(client, "/api/v1/bootstrap", secret_a).json()
    body_b = get(client, "/api/v1/bootstrap", secret_b).json()
    assert body_a["tenant"]["id"] == str(tenant_a.pk) and body_b["tenant"]["id"] == str(tenant_b.pk)
    assert body_a["flags"]["beta"] == {**body_a["flags"]["beta"], "enabled": False, "reason": "default"}
    assert body_b["flags"]["beta"]["enabled"] is True
    assert get(client, "/api/v1/flags/beta", secret_a).json()["enabled"] is False
    assert get(client, "/api/v1/flags/beta", secret_b).json()["enabled"] is True
    # Every tenant-scoped key carries its own tenant's hash tag; none is shared.
    keys_a = {k for k in redis_client.scan_iter("agentapi:*") if "{t:acme}" in k}
    keys_b = {k for k in redis_client.scan_iter("agentapi:*") if "{t:globex}" in k}
    assert keys_a and keys_b and not keys_a & keys_b


def test_etag_and_if_none_match(client, acme):
    _, secret = acme
    first = get(client, "/api/v1/bootstrap", secret)
    etag = first["ETag"]
    cached = get(client, "/api/v1/bootstrap", secret, HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304 and cached.content == b"" and cached["ETag"] == etag
    assert get(client, "/api/v1/bootstrap", secret, HTTP_IF_NONE_MATCH=f'W/{etag}, "x"').status_code == 304
    assert get(client, "/api/v1/bootstrap", secret, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_etag_changes_when_a_flag_changes(client, acme, django_capture_on_commit_callbacks):
    tenant, secret = acme
    beta = make_flag("beta")
    etag = get(client, "/api/v1/bootstrap", secret)["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        flag_set_override(tenant=tenant, flag=beta, enabled=True, actor=None)
    changed = get(client, "/api/v1/bootstrap", secret, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["flags"]["beta"]["reason"] == "admin_override"


def top_level_commands(redis_server, requests) -> list[str]:
    """Return the names of the commands the app sent to Redis (not from scripts) while `requests()` ran."""
    seen = []
    monitor_client = redis.Redis(port=redis_server.port, decode_responses=True)
    ready = threading.Event()

    def watch():
        with monitor_client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command["command"] == "ECHO end-of-test":
                    return
                seen.append(command)

    watcher = threading.Thread(target=watch)
    watcher.start()
    ready.wait(5)
    requests()
    redis.Redis(port=redis_server.port).echo("end-of-test")
    watcher.join(5)
    monitor_client.close()
    # The watcher's own connection handshake (HELLO/CLIENT) is not the app's traffic.
    return [
        c["command"].split()[0]
        for c in seen
        if c.get("client_type") != "lua" and c["command"].split()[0] not in {"HELLO", "CLIENT"}
    ]


def test_warm_bootstrap_makes_no_sql_and_one_redis_call(client, acme, django_assert_num_queries, redis_server):
    _, secret = acme
    get(client, "/api/v1/bootstrap", secret)  # cold: fills the cache, records the last use in Redis

    def requests():
        with django_assert_num_queries(0):
            assert get(client, "/api/v1/bootstrap", secret).status_code == 200
            assert get(client, "/api/v1/flags/anything", secret).status_code == 404

    top_level = top_level_commands(redis_server, requests)
    assert top_level == ["EVALSHA", "EVALSHA"], top_level


def test_route_key_names_follow_the_day_and_the_settings(settings):
    route, secret_hash = ("acme", "7", "production"), "ab" * 32
    keys, member = gateway.routes.keys(secret_hash, route, "20260101")
    assert (keys, member) == gateway_keys("acme", "7", secret_hash, "20260101")
    assert gateway.routes.keys(secret_hash, route, "20260102") == gateway_keys("acme", "7", secret_hash, "20260102")
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE += 1  # new defaults, new entry shape: new entry key
    changed = gateway.routes.keys(secret_hash, route, "20260102")
    assert changed == gateway_keys("acme", "7", secret_hash, "20260102") and changed[0][0] != keys[0]


def test_a_route_of_another_environment_reads_that_environments_document():
    production = gateway_keys("acme", "7", "ab" * 32, "20260101")[0]
    staging = gateway.routes.keys("cd" * 32, ("acme", "7", "staging"), "20260101")[0]
    # Only the document differs: the entry, version, usage and limiter budget are the tenant's.
    assert [i for i, (p, s) in enumerate(zip(production, staging, strict=True)) if p != s] == [0, 2]
    assert staging[2] == production[2] + ":staging"


def test_a_process_that_did_not_fill_reads_the_route_once(client, acme, redis_server):
    _, secret = acme
    get(client, "/api/v1/bootstrap", secret)  # filled by "another worker"
    gateway.routes.forget()  # this worker has never seen the key

    def requests():
        for _ in range(3):
            assert get(client, "/api/v1/bootstrap", secret).status_code == 200

    top_level = top_level_commands(redis_server, requests)
    assert top_level == ["GET", "EVALSHA", "EVALSHA", "EVALSHA"], top_level


def test_suspension_refuses_the_next_request(client, acme, django_capture_on_commit_callbacks):
    tenant, secret = acme
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    assert_error(get(client, "/api/v1/bootstrap", secret), 403, "tenant_suspended")
    assert_error(get(client, "/api/v1/flags/beta", secret), 403, "tenant_suspended")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_resume(tenant=tenant, actor=None)
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        tenant_offboard(tenant=tenant, reason="closed", actor=None)
    assert_error(get(client, "/api/v1/bootstrap", secret), 403, "tenant_deleted")


def test_revoked_unknown_expired_and_malformed_keys_get_401(
    client, acme, django_capture_on_commit_callbacks, redis_client
):
    tenant, secret = acme
    api_key = ApiKey.objects.get()
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        apikey_revoke(api_key=api_key, actor=None)
    response = assert_error(get(client, "/api/v1/bootstrap", secret), 401, "revoked_api_key")
    assert response
    unknown = "aak_00000000_" + "A" * 43
    assert_error(get(client, "/api/v1/bootstrap", unknown), 401, "invalid_api_key")
    assert_error(get(client, "/api/v1/bootstrap", unknown), 401, "invalid_api_key")  # cached refusal
    assert 0 < redis_client.ttl(route_key(apikey_hash(unknown))) <= 30
    assert redis_client.get(route_key(apikey_hash(secret))) == "deny revoked"
    assert redis_client.ttl(route_key(apikey_hash(secret))) > 30
    assert_error(get(client, "/api/v1/bootstrap", "not-a-key"), 401, "invalid_api_key")
    assert_error(client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Basic {secret}"), 401, "invalid_api_key")
    missing = assert_error(client.get("/api/v1/bootstrap"), 401, "missing_api_key")
    assert missing
    assert client.get("/api/v1/bootstrap")["WWW-Authenticate"].startswith("Bearer")
    expiring, expiring_secret = make_key(tenant, expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(get(client, "/api/v1/bootstrap", expiring_secret), 401, "expired_api_key")


def test_scope_not_found_validation_and_method_errors(client, acme):
    tenant, secret = acme
    _, flags_only = make_key(tenant, scopes=["flags:read"])
    assert_error(get(client, "/api/v1/bootstrap", flags_only), 403, "insufficient_scope")
    assert_error(get(client, "/api/v1/flags/nope", secret), 404, "unknown_flag", field="key")
    assert_error(get(client, "/api/v1/flags/Bad!Key", secret), 422, "invalid_request", field="key")
    assert_error(get(client, "/api/v1/flags/beta?subject=" + "x" * 201, secret), 422, "invalid_request", "subject")
    assert_error(get(client, "/api/v1/nowhere", secret), 404, "not_found")
    not_allowed = assert_error(client.post("/api/v1/bootstrap"), 405, "method_not_allowed")
    assert "GET" in not_allowed["detail"]


def test_flag_endpoint_evaluates_rollouts_per_subject(client, acme, settings):
    settings.RESILIENCE_RATE_LIMIT_ENABLED = False  # 40+ calls in a second
    tenant, secret = acme
    flag_set_override(tenant=tenant, flag=make_flag("rolled"), enabled=True, rollout_percent=50, actor=None)
    answers = {get(client, f"/api/v1/flags/rolled?subject=user-{n}", secret).json()["enabled"] for n in range(40)}
    assert answers == {True, False}
    again = get(client, "/api/v1/flags/rolled?subject=user-7", secret).json()
    assert again == get(client, "/api/v1/flags/rolled?subject=user-7", secret).json()
    assert again["reason"] == "rollout" and again["subject"] == "user-7"


def test_rate_limit_and_daily_quota(client, redis_client):
    limited = make_tenant("acme", plan=make_plan("tiny", rate_limit_per_minute=1, burst=1))
    _, secret = make_key(limited)
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    refused = get(client, "/api/v1/bootstrap", secret)
    body = assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1 and body["limit"] == 1
    quota = make_tenant("globex", plan=make_plan("quota", rate_limit_per_minute=1000, daily_quota=2))
    _, quota_secret = make_key(quota)
    for _ in range(2):
        assert get(client, "/api/v1/bootstrap", quota_secret).status_code == 200
    over = get(client, "/api/v1/bootstrap", quota_secret)
    assert_error(over, 429, "quota_exceeded")
    assert int(over["Retry-After"]) <= 86_400
    day = timezone.now().strftime("%Y%m%d")
    counters = redis_client.hgetall(usage_key("globex", quota.pk, day))
    assert counters == {"requests": "2", "quota_exceeded": "1"}
    assert redis_client.hgetall(usage_key("acme", limited.pk, day)) == {"requests": "2", "rate_limited": "1"}
    assert redis_client.exists("agentapi:rl:{t:acme}:tenant:acme:acme")
    assert redis_client.zscore("agentapi:rlidx:{t:acme}", "tenant:acme:acme") is not None


def test_usage_counts_every_served_request(client, acme, redis_client):
    tenant, secret = acme
    make_flag("x")
    for _ in range(5):
        get(client, "/api/v1/bootstrap", secret)
    get(client, "/api/v1/flags/x", secret)
    day = timezone.now().strftime("%Y%m%d")
    assert redis_client.hget(usage_key(tenant.slug, tenant.pk, day), "requests") == "6"
    assert 0 < redis_client.ttl(usage_key(tenant.slug, tenant.pk, day)) <= 8 * 86400


def test_a_fill_that_read_the_database_before_a_commit_is_refused(acme):
    tenant, secret = acme
    secret_hash = apikey_hash(secret)
    stale = _fill(secret_hash)
    Tenant.objects.filter(pk=tenant.pk).update(cache_version=tenant.cache_version + 5)
    versions_publish({tenant.pk: tenant.cache_version + 5}, {tenant.pk: tenant.slug})
    from resilience.connection import get_redis

    keys, member = gateway_keys(stale.slug, stale.tenant_id, secret_hash, "20260101")
    args = ["", "body", "", 60, 0, 60000, "1", "config:read", "", member, "", *stale.args]
    assert _run(get_redis(), keys, args) == [b"stale"]
    assert not get_redis().exists(apikey_key(tenant.slug, secret_hash))


@pytest.mark.parametrize("fail_mode,status", [("open", 200), ("closed", 503)])
def test_without_redis_the_fail_mode_decides(client, acme, redis_server, settings, fail_mode, status):
    _, secret = acme
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = fail_mode
    redis_server.kill()
    response = get(client, "/api/v1/bootstrap", secret)
    assert response.status_code == status
    if status == 200:
        assert response.json()["tenant"]["slug"] == "acme"
    else:
        assert_error(response, 503, "service_unavailable")


@pytest.mark.parametrize("redis_up", [True, False])
def test_database_down_on_a_cold_request_answers_503_json(client, acme, redis_server, monkeypatch, redis_up):
    from django.db import OperationalError, connection

    _, secret = acme
    if not redis_up:
        redis_server.kill()

    def unreachable(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(connection, "cursor", unreachable)
    assert_error(get(client, "/api/v1/bootstrap", secret), 503, "service_unavailable")


def test_warm_requests_survive_a_database_outage(client, acme, monkeypatch):
    from django.db import OperationalError, connection

    _, secret = acme
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200  # warms the cache

    def unreachable(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(connection, "cursor", unreachable)
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200


def test_openapi_document_describes_the_api(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/bootstrap", "/api/v1/flags/{key}"} <= set(doc["paths"])
    bootstrap = doc["paths"]["/api/v1/bootstrap"]["get"]
    assert {"200", "304", "401", "403", "429"} <= set(bootstrap["responses"])
    assert any(s.get("scheme") == "bearer" for s in doc["components"]["securitySchemes"].values())
    assert json.dumps(doc)


def test_requests_without_a_tenant_key_keep_the_middleware_ip_limit(client, settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1
    settings.RESILIENCE_RATE_LIMIT_BURST = 0
    assert_error(client.get("/api/v1/bootstrap"), 401, "missing_api_key")
    assert_error(client.get("/api/v1/bootstrap"), 429, "rate_limited")


def test_bootstrap_is_served_without_django_ninjas_dispatch(client, acme, monkeypatch):
    """The hot route calls the gate and the handler directly; ninja still documents it and answers other methods."""
    from ninja.operation import Operation

    _, secret = acme
    real_run = Operation.run
    runs = []

    def counting_run(self, request, **kwargs):
        runs.append(request.path)
        return real_run(self, request, **kwargs)

    monkeypatch.setattr(Operation, "run", counting_run)
    response = get(client, "/api/v1/bootstrap", secret)
    assert response.status_code == 200 and response["ETag"] and response["RateLimit-Limit"]
    assert get(client, "/api/v1/bootstrap", secret, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert_error(get(client, "/api/v1/bootstrap", "aak_00000000_" + "x" * 43), 401, "invalid_api_key")
    assert runs == []
    assert get(client, "/api/v1/flags/beta", secret).status_code == 404  # other routes keep ninja
    assert runs == ["/api/v1/flags/beta"]
    assert_error(client.post("/api/v1/bootstrap"), 405, "method_not_allowed")


def test_bootstrap_flags_carry_the_rollout_percent_for_local_evaluation(client, acme):
    tenant, secret = acme
    flag = make_flag("beta", default=True)
    make_flag("plain", default=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, rollout_percent=30, actor=None)
    flags = get(client, "/api/v1/bootstrap", secret).json()["flags"]
    assert flags["beta"]["reason"] == "rollout" and flags["beta"]["rollout_percent"] == 30
    assert flags["plain"]["rollout_percent"] == 100


def test_a_slug_used_before_by_another_tenant_does_not_make_its_cache_stale(client):
    import uuid

    # A tenant removed from the database left a high published version under the same slug.
    gone = uuid.uuid4()
    versions_publish({gone: 50}, {gone: "acme"})
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
    assert get(client, "/api/v1/bootstrap", secret).status_code == 200
