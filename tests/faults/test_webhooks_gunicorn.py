"""Webhooks from a real deployment: gunicorn workers' couriers send what another process committed.

The change and the endpoint are made by `manage.py shell` (a process that exits at once,
like an operator's command or another replica); nothing runs `deliver_webhooks`: only the
couriers in the two gunicorn workers can deliver, and they do within their poll interval.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import wait_for
from tests.webhooks.conftest import Receiver

_SETUP = """
from tenants.models import Tenant
from webhooks.services.endpoints import endpoint_create
endpoint, secret = endpoint_create(
    tenant=Tenant.objects.get(slug="acme"), url={url!r}, event_types=["tenant.status_changed"], actor=None
)
print(secret)
"""
_CHANGES = """
from tenants.models import Tenant
from tenants.services.tenants import tenant_resume, tenant_suspend
acme = Tenant.objects.get(slug="acme")
for n in range(3):
    tenant_suspend(tenant=acme, reason=f"fault test {n}", actor=None)
    tenant_resume(tenant=acme, actor=None)
"""
ENV = {"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOKS_POLL_INTERVAL": "1s"}


@pytest.fixture
def receiver():
    served = Receiver()
    yield served
    served.stop()


def test_the_workers_couriers_deliver_every_event_in_order(stack, receiver):
    stack.app(**ENV)
    # A resumed tenant returns to the status it was suspended from (the demo's acme may be a trial).
    ((serving,),) = stack.database.query("SELECT status FROM tenants_tenant WHERE slug = 'acme'")
    secret = stack.manage("shell", "-c", _SETUP.format(url=receiver.url), **ENV).stdout.strip().splitlines()[-1]
    committed = time.monotonic()
    stack.manage("shell", "-c", _CHANGES, **ENV)

    wait_for(lambda: len(receiver.requests) >= 6, "six webhook deliveries from the gunicorn workers", timeout=30)
    elapsed = time.monotonic() - committed
    time.sleep(1.5)  # a duplicate would arrive within the next poll

    payloads = receiver.payloads(secret)
    assert [p["data"]["after"]["status"] for p in payloads] == ["suspended", serving] * 3
    assert [p["data"]["after"]["status_reason"] for p in payloads[::2]] == [f"fault test {n}" for n in range(3)]
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 6  # none twice
    assert elapsed < 20
