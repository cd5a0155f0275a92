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


def test_the_log_keeps_finished_deliveries_for_the_retention_then_drops_them(tenant, receiver):
    from datetime import timedelta

    from django.test import override_settings
    from django.utils import timezone

    from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent

    endpoint_create(tenant=tenant, url=receiver.url, event_types=[EventType.OVERRIDE_SET], actor=None)
    flag = make_flag("beta")
    flag_set_override(tenant=tenant, flag=flag, enabled=True, actor=None)
    _run()  # delivered
    receiver.stop()
    flag_set_override(tenant=tenant, flag=flag, enabled=False, actor=None)
    _run()  # pending, one failed attempt
    old = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.update(created_at=old)
    WebhookEvent.objects.update(created_at=old)

    with override_settings(WEBHOOKS_LOG_RETENTION=30 * 86400, WEBHOOKS_RETRY_WINDOW=40 * 86400):
        done = _run()

    assert done["webhooks_log_pruned"] == 1
    [kept] = WebhookDelivery.objects.all()
    assert kept.status == "pending"  # never dropped while it may still be sent
    assert WebhookEvent.objects.count() == 1 and WebhookAttempt.objects.filter(delivery=kept).exists()
