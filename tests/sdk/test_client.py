"""The Python SDK (clients/python) against the real app served by pytest-django's live server."""

from __future__ import annotations

import pytest
from agentapi_client import READY, REVOKED, STALE, SUSPENDED, ControlPlane, ControlPlaneError
from django.test import Client

from tenants.models import Flag
from tenants.services.apikeys import apikey_revoke
from tenants.services.environments import environment_create
from tenants.services.flags import flag_set_override, flag_update
from tenants.services.tenants import tenant_resume, tenant_suspend
from tests.sdk.conftest import wait_for
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    # A roomy plan: the tests ask the server once per subject.
    plan = make_plan("roomy", rate_limit_per_minute=100_000, burst=1_000)
    tenant = make_tenant("acme", plan=plan, status="active", settings={"agent_type": "goose"})
    make_flag("beta", default=False)
    make_flag("tools", default=True)
    _, secret = make_key(tenant)
    return tenant, secret


@pytest.fixture
def plane(forwarder, acme):
    clients = []

    def make(**options) -> ControlPlane:
        options.setdefault("poll_interval", 0)
        client = ControlPlane(forwarder.url, acme[1], timeout=2, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()


def test_start_exposes_tenant_settings_limits_and_flags(plane, acme):
    client = plane().start()
    assert client.status == READY
    assert client.tenant["slug"] == "acme" and client.settings["agent_type"] == "goose"
    assert client.limits["requests_per_minute"] > 0
    assert client.is_enabled("tools") is True and client.is_enabled("beta") is False
    assert client.flag("nope") is None and client.is_enabled("nope", default=True) is True
    assert client.environment == "production"


def test_a_key_of_another_environment_reads_its_flags(plane, acme, forwarder):
    tenant, _ = acme
    environment_create(tenant=tenant, key="staging", actor=None)
    flag_set_override(tenant=tenant, flag=Flag.objects.get(key="beta"), enabled=True, actor=None, environment="staging")
    _, secret = make_key(tenant, environment="staging")
    client = ControlPlane(forwarder.url, secret, timeout=2, poll_interval=0)
    try:
        client.start()
        assert client.environment == "staging" and client.is_enabled("beta") is True
        assert plane().start().is_enabled("beta") is False  # the production key
    finally:
        client.stop()


def test_local_rollout_evaluation_matches_the_server_for_every_subject(plane, acme):
    tenant, secret = acme
    flag_set_override(tenant=tenant, flag=Flag.objects.get(key="beta"), enabled=True, rollout_percent=30, actor=None)
    client = plane().start()
    http = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    admitted = 0
    for n in range(150):
        subject = f"user-{n}"
        response = http.get(f"/api/v1/flags/beta?subject={subject}")
        assert response.status_code == 200, response.content
        server = response.json()
        local = client.flag("beta", subject)
        assert (local.enabled, local.reason) == (server["enabled"], server["reason"]), subject
        admitted += local.enabled
    assert 20 < admitted < 70  # about 30 % of 150


def test_refresh_is_conditional_and_reports_changed_flags(plane, acme):
    client = plane().start()
    changes = []
    client.on_change(changes.append)
    assert client.refresh() is False  # 304: nothing changed
    flag_update(flag=Flag.objects.get(key="beta"), default=True, actor=None)
    assert client.refresh() is True
    assert changes == [["beta"]] and client.is_enabled("beta") is True


def test_background_polling_picks_up_a_change(plane, acme):
    client = plane(poll_interval=0.2).start()
    changes = []
    client.on_change(changes.append)
    flag_update(flag=Flag.objects.get(key="beta"), default=True, actor=None)
    wait_for(lambda: client.is_enabled("beta"))
    assert changes == [["beta"]]


def test_unreachable_control_plane_serves_the_last_known_good_document(plane, forwarder, acme):
    client = plane(poll_interval=0.1, max_backoff=0.2).start()
    statuses = []
    client.on_status(statuses.append)
    forwarder.cut()
    wait_for(lambda: client.status == STALE)
    assert client.is_enabled("tools") is True and client.tenant["slug"] == "acme"
    flag_update(flag=Flag.objects.get(key="tools"), default=False, actor=None)
    forwarder.heal()
    wait_for(lambda: client.status == READY and client.is_enabled("tools") is False)
    assert statuses[:2] == [STALE, READY]


def test_start_fails_clearly_without_a_document(forwarder, acme):
    forwarder.cut()
    client = ControlPlane(forwarder.url, acme[1], poll_interval=0, timeout=1)
    with pytest.raises(ControlPlaneError, match="unreachable"):
        client.start()
    assert client.is_enabled("tools", default=True) is True
    client.stop()


def test_revoked_key_stops_the_client(plane, acme):
    tenant, secret = acme
    client = plane(poll_interval=0.1).start()
    apikey_revoke(api_key=tenant.api_keys.get(), actor=None)
    wait_for(lambda: client.status == REVOKED)
    assert "refused" in client.last_error
    assert client._thread is not None
    client._thread.join(timeout=2)
    assert not client._thread.is_alive()
    with pytest.raises(ControlPlaneError) as caught:
        ControlPlane(client._http.base_url.__str__(), secret, poll_interval=0).start()
    assert caught.value.status == REVOKED


def test_suspended_tenant_is_reported_and_resumes(plane, acme):
    tenant, _ = acme
    client = plane(poll_interval=0.1).start()
    tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    wait_for(lambda: client.status == SUSPENDED)
    tenant_resume(tenant=tenant, actor=None)
    wait_for(lambda: client.status == READY)


def test_the_sdk_installs_with_pip(tmp_path):
    """`pip install ./clients/python` builds and installs it (its build backend comes from the package index)."""
    import subprocess
    import sys

    from tests.conftest import BASE_DIR

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(BASE_DIR / "clients" / "python")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    probe = "import agentapi_client, agentapi_client.openfeature; print(agentapi_client.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(target)}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target))
