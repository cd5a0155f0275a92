"""deliver_webhooks: sends what is due, reports the backlog, and --dry-run sends nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tenants.services.flags import flag_set_override
from tests.tenants.factories import make_flag
from webhooks.models import EventType
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db


def _run(*args) -> dict:
    out = StringIO()
    call_command("deliver_webhooks", "--json", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_dry_run_reports_the_backlog_and_sends_nothing_then_a_run_sends_it(tenant, receiver):
    endpoint_create(tenant=tenant, url=receiver.url, event_types=[EventType.OVERRIDE_SET], actor=None)
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=None)

    dry = _run("--dry-run")
    assert dry["webhooks_pending"] == 1 and "webhooks_delivered" not in dry
    assert receiver.requests == []

    done = _run()
    assert (done["webhooks_delivered"], done["webhooks_pending"]) == (1, 0)
    assert len(receiver.requests) == 1


def test_a_down_receiver_leaves_the_delivery_pending_for_the_next_run(tenant, receiver):
    endpoint_create(tenant=tenant, url=receiver.url, event_types=[EventType.OVERRIDE_SET], actor=None)
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=None)
    receiver.stop()
    done = _run()
    assert (done["webhooks_retrying"], done["webhooks_pending"]) == (1, 1)
