"""POST /api/v1/evaluate and the typed answers of GET /api/v1/flags/{key} and the bootstrap."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from django.test import Client
from django.utils import timezone

from tenants.flagrules import evaluate as evaluate_entry
from tenants.keys import usage_key
from tenants.services.flags import segment_create
from tenants.services.tenants import tenant_update

from .factories import make_flag, make_key, make_plan, make_tenant
from .test_api import assert_error

pytestmark = pytest.mark.django_db

COLOURS = [{"key": "red", "value": "#f00", "weight": 50}, {"key": "green", "value": "#0f0", "weight": 50}]


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def acme(settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 10_000
    tenant = make_tenant("acme", plan=make_plan("roomy", rate_limit_per_minute=10_000, burst=1_000))
    tenant_update(tenant=tenant, labels=["eu"], actor=None)
    _, secret = make_key(tenant)
    segment_create(key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None)
    segment_create(
        key="ios_recent",
        conditions=[
            {"attribute": "context.platform", "op": "in", "values": ["ios"]},
            {"attribute": "context.app_version", "op": "semver_gte", "values": ["2.0.0"]},
        ],
        actor=None,
    )
    make_flag("beta", default=False, rules=[{"segment": "eu", "serve": {"enabled": True}}])
    make_flag(
        "theme",
        kind="string",
        default=True,
        default_value="#fff",
        variants=COLOURS,
        rules=[{"segment": "ios_recent", "serve": {"enabled": True, "value": "#000"}}],
    )
    make_flag("limit", kind="number", default=True, default_value=5)
    return tenant, secret


def post(client, body, secret, raw: bool = False):
    data = body if raw else json.dumps(body)
    return client.post(
        "/api/v1/evaluate", data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )


def test_evaluate_answers_every_flag_for_the_subject_and_context(client, acme):
    _, secret = acme
    response = post(client, {"subject": "user-7", "context": {"platform": "ios", "app_version": "2.1.0"}}, secret)
    assert response.status_code == 200, response.content
    assert response["RateLimit-Limit"]
    body = response.json()
    assert body["subject"] == "user-7" and body["missing"] == []
    flags = body["flags"]
    assert set(flags) == {"beta", "theme", "limit"}
    assert flags["beta"] == {**flags["beta"], "enabled": True, "value": True, "reason": "rule", "rule": 1}
    assert flags["theme"] == {**flags["theme"], "value": "#000", "variant": None, "reason": "rule", "rule": 1}
    assert flags["limit"] == {**flags["limit"], "value": 5, "reason": "default"}
    assert "rule" not in flags["limit"]
    old_app = post(client, {"subject": "user-7", "context": {"platform": "ios", "app_version": "1.9.0"}}, secret)
    theme = old_app.json()["flags"]["theme"]
    assert theme["reason"] == "split" and theme["variant"] in {"red", "green"}


def test_the_default_subject_is_the_tenant_and_keys_select_flags(client, acme):
    tenant, secret = acme
    body = post(client, {"keys": ["theme", "nope", "theme"]}, secret).json()
    assert body["subject"] == str(tenant.pk)
    assert list(body["flags"]) == ["theme"] and body["missing"] == ["nope"]
    bootstrap = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert body["flags"]["theme"]["variant"] == bootstrap["flags"]["theme"]["variant"]


def test_evaluate_agrees_with_local_evaluation_of_the_bootstrap(client, acme):
    _, secret = acme
    bootstrap = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    for n in range(20):
        context = {"platform": "ios" if n % 2 else "web", "app_version": f"{n % 3 + 1}.0.0"}
        remote = post(client, {"subject": f"u{n}", "context": context}, secret).json()["flags"]
        for key, entry in bootstrap["flags"].items():
            local = evaluate_entry(key, entry["eval"], f"u{n}", context)
            assert (local.enabled, local.value, local.variant, local.reason) == (
                remote[key]["enabled"],
                remote[key]["value"],
                remote[key]["variant"],
                remote[key]["reason"],
            )


@pytest.mark.parametrize(
    "body,field",
    [
        ({"subject": ""}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"subject": 7}, "subject"),
        ({"context": {"bad name": "x"}}, "context.bad name.[key]"),
        ({"context": {f"a{n}": n for n in range(51)}}, "context"),
        ({"context": {"a": "x" * 1025}}, "context.a"),
        ({"context": {"a": {"nested": 1}}}, "context.a"),
        ({"context": {"a": [True]}}, "context.a"),
        ({"context": {"a": list(range(101))}}, "context.a"),
        ({"context": "platform=ios"}, "context"),
        ({"keys": ["Bad!"]}, "keys.0"),
        ({"keys": [f"k{n}" for n in range(101)]}, "keys"),
        ({"keys": "beta"}, "keys"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_is_not_billed(client, acme, redis_client, body, field):
    tenant, secret = acme
    response = post(client, body, secret)
    problem = assert_error(response, 422, "invalid_request")
    assert problem["field"].startswith(field), problem
    day = timezone.now().strftime("%Y%m%d")
    assert redis_client.hget(usage_key(tenant.slug, tenant.pk, day), "requests") is None


@pytest.mark.parametrize(
    "raw,status",
    [("{not json", 400), ("", 422), ('{"subject": "\\ud800x"}', 422), ('{"context": {"a": NaN}}', 422), ("{}", 200)],
)
def test_the_gate_and_the_handler_agree_on_what_is_refused(client, acme, redis_client, raw, status):
    tenant, secret = acme
    response = post(client, raw, secret, raw=True)
    assert response.status_code == status, response.content
    if status != 200:
        assert_error(response, status, "invalid_request")
    day = timezone.now().strftime("%Y%m%d")
    billed = redis_client.hget(usage_key(tenant.slug, tenant.pk, day), "requests")
    assert billed == ("1" if status == 200 else None)


def test_evaluate_needs_the_flags_scope(client, acme):
    tenant, _ = acme
    _, config_only = make_key(tenant, scopes=["config:read"])
    assert_error(post(client, {}, config_only), 403, "insufficient_scope")
    assert_error(client.post("/api/v1/evaluate", data="{}", content_type="application/json"), 401, "missing_api_key")
    assert_error(client.get("/api/v1/evaluate"), 405, "method_not_allowed")


def test_warm_evaluate_makes_no_sql_and_one_redis_call(client, acme, django_assert_num_queries, redis_server):
    _, secret = acme
    assert post(client, {"subject": "u"}, secret).status_code == 200  # cold: fills the cache
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
    with django_assert_num_queries(0):
        assert post(client, {"subject": "u", "context": {"platform": "ios"}}, secret).status_code == 200
    redis.Redis(port=redis_server.port).echo("end-of-test")
    watcher.join(5)
    monitor_client.close()
    top_level = [
        c["command"].split()[0]
        for c in seen
        if c.get("client_type") != "lua" and c["command"].split()[0] not in {"HELLO", "CLIENT"}
    ]
    assert top_level == ["EVALSHA"], top_level


def test_flag_endpoint_and_bootstrap_carry_value_variant_and_rule(client, acme):
    _, secret = acme
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    beta = client.get("/api/v1/flags/beta?subject=u1", **auth).json()
    assert beta == {
        "key": "beta",
        "subject": "u1",
        "enabled": True,
        "value": True,
        "variant": None,
        "reason": "rule",
        "rule": 1,
        "version": beta["version"],
    }
    theme = client.get("/api/v1/flags/theme?subject=u1", **auth).json()
    assert theme["reason"] == "split" and theme["variant"] in {"red", "green"} and "rule" not in theme
    flags = client.get("/api/v1/bootstrap", **auth).json()["flags"]
    assert flags["beta"]["rule"] == 1 and flags["beta"]["eval"]["steps"][0]["reason"] == "rule"
    assert flags["theme"]["eval"]["variants"] == COLOURS and flags["limit"]["value"] == 5


def test_the_openapi_document_describes_evaluate_and_the_typed_answers(client):
    doc = client.get("/api/v1/openapi.json").json()
    operation = doc["paths"]["/api/v1/evaluate"]["post"]
    assert operation["operationId"] == "evaluate"
    assert {"200", "401", "403", "422", "429"} <= set(operation["responses"])
    schemas = doc["components"]["schemas"]
    assert {"subject", "context", "keys"} <= set(schemas["EvaluateIn"]["properties"])
    assert {"value", "variant", "rule"} <= set(schemas["FlagOut"]["properties"])
    assert "eval" in schemas["BootstrapFlagOut"]["properties"]
    assert "split" in json.dumps(schemas["FlagOut"])


@pytest.mark.django_db(transaction=True)
def test_evaluate_conforms_to_its_openapi_document(settings):
    """Schemathesis: no 5xx, and every answer is one the document promises."""
    import schemathesis
    from django.core.wsgi import get_wsgi_application
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1_000_000
    tenant = make_tenant("acme", plan=make_plan("big", rate_limit_per_minute=1_000_000, burst=100_000))
    make_flag("beta", default=True)
    _, secret = make_key(tenant)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    operation = next(
        op for op in (r.ok() for r in schema.get_all_operations()) if op.definition.raw["operationId"] == "evaluate"
    )
    seen = set()

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}
        response = case.call_and_validate()
        seen.add(response.status_code)
        assert response.status_code < 500, response.text

    check()
    assert 200 in seen, seen


def test_the_documented_reasons_are_the_evaluators():
    from typing import get_args

    from tenants.api.schemas import Reason
    from tenants.flagrules import REASONS

    assert get_args(Reason) == REASONS


def test_parsed_rules_are_reused_only_for_the_same_document(
    client, acme, monkeypatch, django_capture_on_commit_callbacks
):
    from tenants.api import views
    from tenants.models import Flag
    from tenants.services.flags import flag_update

    _, secret = acme
    parses = []
    real_loads = json.loads

    def counting_loads(raw, *args, **kwargs):
        parses.append(len(raw))
        return real_loads(raw, *args, **kwargs)

    monkeypatch.setattr(views, "parsed_rules", views.ParsedRules(size=2))
    first = post(client, {"subject": "u", "keys": ["beta"]}, secret).json()
    monkeypatch.setattr(views.json, "loads", counting_loads)
    for _ in range(3):
        assert post(client, {"subject": "u", "keys": ["beta"]}, secret).json() == first
        assert client.get("/api/v1/flags/beta?subject=u", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    # Only the gate's look at each POST body: the rules were parsed once, before counting.
    assert all(size < 200 for size in parses), parses
    with django_capture_on_commit_callbacks(execute=True):
        flag_update(flag=Flag.objects.get(key="beta"), default=True, rules=[], actor=None)
    changed = post(client, {"subject": "u", "keys": ["beta"]}, secret).json()
    assert changed["flags"]["beta"]["reason"] == "default" and changed["flags"]["beta"]["enabled"] is True
