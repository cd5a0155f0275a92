"""The OpenFeature provider against the live app: every resolution type, reason and error code, and events."""

from __future__ import annotations

import pytest
from agentapi_client import ControlPlane
from agentapi_client.openfeature import AgentApiProvider
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from tenants.models import Flag
from tenants.services.apikeys import apikey_revoke
from tenants.services.flags import flag_set_override, flag_update
from tests.sdk.conftest import wait_for
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    tenant = make_tenant("acme", plan=make_plan("std", default_flags={}), status="active")
    make_flag("beta", default=False)
    make_flag("tools", default=True)
    _, secret = make_key(tenant)
    return tenant, secret


@pytest.fixture
def openfeature_client(forwarder, acme):
    provider = AgentApiProvider(ControlPlane(forwarder.url, acme[1], poll_interval=0.1, max_backoff=0.2, timeout=2))
    api.set_provider_and_wait(provider)
    yield api.get_client(), provider
    api.shutdown()
    api.clear_providers()


def test_boolean_resolution_with_reason_and_variant(openfeature_client, acme):
    client, _ = openfeature_client
    details = client.get_boolean_details("tools", False)
    assert details.value is True and details.reason == Reason.DEFAULT and details.variant == "on"
    assert details.error_code is None and details.flag_metadata["reason"] == "default"

    tenant, _ = acme
    flag_set_override(tenant=tenant, flag=Flag.objects.get(key="beta"), enabled=True, rollout_percent=50, actor=None)
    client_plane = openfeature_client[1].control_plane
    client_plane.refresh()
    values = {client.get_boolean_value("beta", False, EvaluationContext(targeting_key=f"user-{n}")) for n in range(40)}
    assert values == {True, False}
    split = client.get_boolean_details("beta", False, EvaluationContext(targeting_key="user-1"))
    assert split.reason == Reason.SPLIT and split.variant in {"on", "off"}


def test_error_codes(openfeature_client):
    client, _ = openfeature_client
    missing = client.get_boolean_details("nope", True)
    assert missing.value is True and missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.reason == Reason.ERROR
    for resolve, default in (
        (client.get_string_details, "x"),
        (client.get_integer_details, 3),
        (client.get_float_details, 1.5),
        (client.get_object_details, {"a": 1}),
    ):
        details = resolve("tools", default)
        assert details.value == default and details.error_code == ErrorCode.TYPE_MISMATCH
        assert resolve("nope", default).error_code == ErrorCode.FLAG_NOT_FOUND


def test_not_ready_when_the_control_plane_cannot_be_reached(forwarder, acme):
    forwarder.cut()
    provider = AgentApiProvider(ControlPlane(forwarder.url, acme[1], poll_interval=0, timeout=1))
    try:
        with pytest.raises(ProviderNotReadyError, match="unreachable"):
            api.set_provider_and_wait(provider)
        details = api.get_client().get_boolean_details("tools", False)
        assert details.value is False and details.error_code == ErrorCode.PROVIDER_NOT_READY
        with pytest.raises(ProviderNotReadyError, match="unreachable"):
            provider.resolve_boolean_details("tools", False)
    finally:
        api.shutdown()
        api.clear_providers()


def test_stale_then_ready_and_configuration_changed_events(openfeature_client, forwarder):
    client, _provider = openfeature_client
    events = []
    watched = (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    for event in watched:
        client.add_handler(event, lambda details, event=event: events.append((event, details.flags_changed)))
    events.clear()  # handlers for a ready provider run once at registration
    forwarder.cut()
    wait_for(lambda: (ProviderEvent.PROVIDER_STALE, None) in events)
    assert client.get_boolean_details("tools", False).reason == Reason.STALE
    flag_update(flag=Flag.objects.get(key="beta"), default=True, actor=None)
    forwarder.heal()
    wait_for(lambda: (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ["beta"]) in events)
    assert client.get_boolean_value("beta", False) is True
    assert api.get_client().get_provider_status() == ProviderStatus.READY


def test_revoked_key_is_fatal(openfeature_client, acme):
    client, provider = openfeature_client
    tenant, _ = acme
    apikey_revoke(api_key=tenant.api_keys.get(), actor=None)
    wait_for(lambda: provider.control_plane.status == "revoked")
    details = client.get_boolean_details("tools", False)
    assert details.value is False and details.error_code == ErrorCode.PROVIDER_FATAL
