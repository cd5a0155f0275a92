"""Typed flags in the Python SDK and its OpenFeature provider, against the live app."""

from __future__ import annotations

import pytest
from agentapi_client import ControlPlane, ControlPlaneError
from agentapi_client.openfeature import AgentApiProvider
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tenants.services.flags import segment_create
from tenants.services.tenants import tenant_update
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

COLOURS = [{"key": "red", "value": "#f00", "weight": 50}, {"key": "green", "value": "#0f0", "weight": 50}]
IOS = EvaluationContext(targeting_key="user-1", attributes={"platform": "ios", "build": 812, "groups": ["qa"]})


@pytest.fixture
def acme():
    make_flag("beta", default=False)
    plan = make_plan("roomy", rate_limit_per_minute=100_000, burst=1_000, default_flags={"beta": True})
    tenant = make_tenant("acme", plan=plan, status="active")
    tenant_update(tenant=tenant, labels=["eu"], actor=None)
    segment_create(key="ios", conditions=[{"attribute": "context.platform", "op": "in", "values": ["ios"]}], actor=None)
    segment_create(key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None)
    make_flag(
        "theme",
        kind="string",
        default=True,
        default_value="#fff",
        variants=COLOURS,
        rules=[{"segment": "ios", "serve": {"enabled": True, "variant": "green"}}],
    )
    make_flag(
        "agents",
        kind="number",
        default=True,
        default_value=3,
        rules=[
            {"segment": "ios", "serve": {"enabled": True, "value": 2.5}},
            {"segment": "eu", "serve": {"enabled": True}},
        ],
    )
    make_flag("tools", kind="json", default=True, default_value={"allowed": ["git"]})
    make_flag("banner", kind="string", default=False, default_value="hello")
    _, secret = make_key(tenant)
    return tenant, secret


@pytest.fixture
def plane(forwarder, acme):
    client = ControlPlane(forwarder.url, acme[1], poll_interval=0, timeout=2)
    yield client
    client.stop()


def test_typed_getters(plane):
    plane.start()
    assert plane.get_string("theme", "x", "user-1", {"platform": "ios"}) == "#0f0"
    assert plane.get_variant("theme", "user-1", {"platform": "ios"}) == "green"
    assert plane.get_string("theme", "x", "user-1") in {"#f00", "#0f0"}
    assert plane.get_number("agents", 0, "u", {"platform": "ios"}) == 2.5
    assert plane.get_number("agents", 0, "u") == 3
    assert plane.get_json("tools", None) == {"allowed": ["git"]}
    assert plane.get_string("banner", "default") == "default"  # off
    assert plane.get_string("agents", "x") == "x" and plane.get_number("theme", 7) == 7  # wrong kinds
    assert plane.get_string("nope", "x") == "x" and plane.get_variant("nope") is None
    assert plane.is_enabled("beta") is True and plane.flag("beta").reason == "plan"


def test_local_and_remote_evaluation_agree(plane, acme):
    tenant, _ = acme
    plane.start()
    contexts = [{}, {"platform": "ios"}, {"platform": "android", "build": 3}]
    for n in range(30):
        subject = f"user-{n}"
        context = contexts[n % 3]
        local = plane.evaluate(subject, context)
        remote = plane.evaluate(subject, context, remote=True)
        assert local == remote, subject
    tenant_default = plane.evaluate(context={"platform": "ios"}, keys=["theme", "nope"])
    assert list(tenant_default) == ["theme"]
    assert tenant_default == plane.evaluate(str(tenant.pk), {"platform": "ios"}, ["theme"], remote=True)
    assert plane.evaluate(keys=["agents"]) == plane.evaluate(keys=["agents"], remote=True)


def test_remote_evaluation_needs_no_document_and_reports_refusals(forwarder, acme):
    client = ControlPlane(forwarder.url, acme[1], poll_interval=0, timeout=2)
    try:
        answers = client.evaluate("user-1", {"platform": "ios"}, ["theme"], remote=True)
        assert (answers["theme"].variant, answers["theme"].reason, answers["theme"].rule) == ("green", "rule", 1)
        with pytest.raises(ControlPlaneError, match="422"):
            client.evaluate("user-1", {"bad name": 1}, remote=True)
    finally:
        client.stop()


@pytest.fixture
def openfeature_client(forwarder, acme):
    provider = AgentApiProvider(ControlPlane(forwarder.url, acme[1], poll_interval=0, timeout=2))
    api.set_provider_and_wait(provider)
    yield api.get_client()
    api.shutdown()
    api.clear_providers()


def test_openfeature_resolves_typed_flags_with_variants_and_reasons(openfeature_client):
    client = openfeature_client
    theme = client.get_string_details("theme", "x", IOS)
    assert (theme.value, theme.variant, theme.reason) == ("#0f0", "green", Reason.TARGETING_MATCH)
    assert theme.flag_metadata["rule"] == 1
    split = client.get_string_details("theme", "x", EvaluationContext(targeting_key="user-1"))
    assert split.reason == Reason.SPLIT and split.variant in {"red", "green"}
    agents = client.get_float_details("agents", 0.0, IOS)
    assert (agents.value, agents.reason) == (2.5, Reason.TARGETING_MATCH)
    whole = client.get_integer_details("agents", 0, EvaluationContext(targeting_key="u"))
    assert (whole.value, whole.reason) == (3, Reason.TARGETING_MATCH)  # the tenant's label rule
    fractional = client.get_integer_details("agents", 0, IOS)
    assert fractional.value == 0 and fractional.error_code == ErrorCode.TYPE_MISMATCH
    tools = client.get_object_details("tools", {}, IOS)
    assert (tools.value, tools.reason) == ({"allowed": ["git"]}, Reason.DEFAULT)
    banner = client.get_string_details("banner", "fallback")
    assert (banner.value, banner.reason, banner.variant) == ("fallback", Reason.DISABLED, "off")
    beta = client.get_boolean_details("beta", False)
    assert (beta.value, beta.reason) == (True, Reason.STATIC)


def test_openfeature_refuses_the_wrong_kind(openfeature_client):
    client = openfeature_client
    assert client.get_boolean_details("theme", False).error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_string_details("beta", "x").error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_object_details("theme", {}).error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_string_details("nope", "x").error_code == ErrorCode.FLAG_NOT_FOUND
