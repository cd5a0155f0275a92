"""Writes made while Redis is away are never undone when it returns (gunicorn, 2 workers).

The write is committed by another process (`manage.py shell`, which exits before Redis is
back, like a replica that went away): only the outbox and the workers' own catch-up can
bring Redis up to date. Every answer from the first request after recovery is checked.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import wait_for

CLIENTS = 6  # several keep-alive connections, so both workers answer
POLL_SECONDS = 2.0

_WRITE = """
from django.contrib.auth import get_user_model
from tenants.models import ApiKey, Tenant
from tenants.services.apikeys import apikey_hash, apikey_revoke
from tenants.services.tenants import tenant_suspend
admin = get_user_model().objects.get(username="admin")
apikey_revoke(api_key=ApiKey.objects.get(secret_hash=apikey_hash({acme!r})), actor=admin)
tenant_suspend(tenant=Tenant.objects.get(slug="globex"), reason="fault test", actor=admin)
"""
_RESTORE = """
from django.contrib.auth import get_user_model
from tenants.models import Tenant
from tenants.services.apikeys import apikey_issue
from tenants.services.tenants import tenant_resume
admin = get_user_model().objects.get(username="admin")
tenant_resume(tenant=Tenant.objects.get(slug="globex"), actor=admin)
print(apikey_issue(tenant=Tenant.objects.get(slug="acme"), name="fault", scopes=None, actor=admin)[1])
"""


@pytest.fixture(scope="module")
def app(stack):
    return stack.app()


def _answers(stack, app, secret: str, rounds: int) -> list[int]:
    clients = [stack.client(app) for _ in range(CLIENTS)]
    headers = {"Authorization": f"Bearer {secret}"}
    return [client.request("GET", "/api/v1/bootstrap", headers=headers)[0] for _ in range(rounds) for client in clients]


def _poll_after_recovery(stack, app, acme: str, globex: str) -> dict[str, list[int]]:
    """Ask with both keys, from the first moment Redis answers, for POLL_SECONDS."""
    seen: dict[str, list[int]] = {"acme": [], "globex": []}
    clients = [stack.client(app) for _ in range(CLIENTS)]
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        for client in clients:
            for name, secret in (("acme", acme), ("globex", globex)):
                status = client.request("GET", "/api/v1/bootstrap", headers={"Authorization": f"Bearer {secret}"})[0]
                seen[name].append(status)
    return seen


@pytest.mark.parametrize("fault", ["sigkill", "sigstop"])
def test_a_revocation_and_a_suspension_made_during_the_outage_hold_after_it(stack, app, fault):
    acme, globex = stack.api_key("acme"), stack.api_key("globex")
    if fault == "sigstop":
        # The sigkill round revoked acme's seeded key and suspended globex: start afresh.
        acme = stack.manage("shell", "-c", _RESTORE).stdout.strip().splitlines()[-1]
    # Warm both keys on both workers: their entries are cached in Redis.
    assert set(_answers(stack, app, acme, 3)) == {200}
    assert set(_answers(stack, app, globex, 3)) == {200}

    if fault == "sigkill":
        stack.redis.kill()
    else:
        stack.redis.pause()
    try:
        stack.manage("shell", "-c", _WRITE.format(acme=acme))
        # Traffic during the outage: the database already refuses both.
        during = _answers(stack, app, acme, 1)
        assert 200 not in during and not [s for s in during if s >= 500 and s != 503], during
    finally:
        if fault == "sigkill":
            stack.redis.restart_from_aof()
        else:
            stack.redis.resume()

    seen = _poll_after_recovery(stack, app, acme, globex)
    assert len(seen["acme"]) >= CLIENTS * 2
    assert 200 not in seen["acme"], f"revoked key served after recovery: {seen['acme']}"
    assert 200 not in seen["globex"], f"suspended tenant served after recovery: {seen['globex']}"
    assert not [s for s in seen["acme"] + seen["globex"] if s >= 500 and s != 503], seen
    # Once Redis is back for good, the refusals come from Redis again, not from a 503.
    wait_for(lambda: set(_answers(stack, app, acme, 1)) == {401}, "the revoked key to answer 401 everywhere")


def test_a_partition_no_worker_saw_is_healed_within_the_courier_interval(stack, app):
    """Redis paused while the app is idle, the writer gone before it resumes: only the couriers can tell."""
    acme = stack.manage("shell", "-c", _RESTORE).stdout.strip().splitlines()[-1]
    globex = stack.api_key("globex")
    assert set(_answers(stack, app, acme, 3)) == {200}
    assert set(_answers(stack, app, globex, 3)) == {200}

    with stack.redis.paused():
        stack.manage("shell", "-c", _WRITE.format(acme=acme))  # its publish times out; no request meanwhile
    resumed = time.monotonic()

    served: list[float] = []  # when the revoked key or the suspended tenant was still answered 200
    clients = [stack.client(app) for _ in range(CLIENTS)]
    while time.monotonic() - resumed < 4.0:
        for client in clients:
            for secret in (acme, globex):
                status = client.request("GET", "/api/v1/bootstrap", headers={"Authorization": f"Bearer {secret}"})[0]
                assert status < 500 or status == 503, status
                if status == 200:
                    served.append(time.monotonic() - resumed)
    bound = max(served, default=0.0)
    # TENANTS_OUTBOX_POLL_INTERVAL is 1 s: every worker's courier delivers within about that.
    assert bound < 2.5, f"stale answers until {bound:.2f}s after Redis resumed"
    print(f"stale window after an unseen partition: {bound:.2f}s ({len(served)} stale answers)")
