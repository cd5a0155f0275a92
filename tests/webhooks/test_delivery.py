"""Delivery against real receivers: signatures, rotation, retries, breaker, ordering, outbound bounds."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from resilience.breakers import breaker
from tenants.services.flags import flag_set_override
from tests.tenants.factories import make_flag, make_staff
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery
from webhooks.services.delivery import delivery_redeliver, retry_delay, webhooks_deliver_due
from webhooks.services.endpoints import endpoint_create, endpoint_rotate_secret

from .conftest import InvalidSignature, verify

pytestmark = pytest.mark.django_db

OVERRIDES = [EventType.OVERRIDE_SET]


def _endpoint(url, tenant=None, types=OVERRIDES):
    return endpoint_create(tenant=tenant, url=url, event_types=list(types), actor=None)


def _override(tenant, flag, enabled):
    flag_set_override(tenant=tenant, flag=flag, enabled=enabled, actor=None)


def _rounds(times: int, *, step: float = 1.0):
    """Run `times` delivery rounds, each on a clock `step` seconds after the previous one."""
    start = timezone.now()
    for n in range(times):
        webhooks_deliver_due(now=start + timedelta(seconds=step * (n + 1)))


def test_change_is_queued_in_its_transaction_and_sent_by_the_worker(tenant, receiver):
    endpoint, secret = _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    _override(tenant, flag, True)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and receiver.requests == []  # nothing is sent inside the write

    report = webhooks_deliver_due()

    assert report.delivered == 1
    [(headers, body)] = receiver.requests
    payload = verify(secret, headers, body)
    assert payload["type"] == "override.set"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["tenant"] == "acme"
    assert payload["data"]["object"] == {"type": "flag_override", "flag": "beta", "environment": "production"}
    assert payload["data"]["before"] is None and payload["data"]["after"]["enabled"] is True
    assert headers["webhook-id"] == delivery.event_id and headers["webhook-id"].startswith("msg_")
    assert headers["content-type"] == "application/json"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.last_latency_ms is not None and delivery.last_response_excerpt == "ok"


def test_a_rolled_back_change_leaves_no_event(tenant, receiver):
    from django.db import transaction

    _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    with pytest.raises(RuntimeError), transaction.atomic():
        _override(tenant, flag, True)
        raise RuntimeError("the request failed after the write")
    assert not WebhookDelivery.objects.exists()


def test_signature_fails_for_a_tampered_body_a_wrong_secret_and_an_old_timestamp(tenant, receiver):
    _, secret = _endpoint(receiver.url, tenant=tenant)
    _override(tenant, make_flag("beta"), True)
    webhooks_deliver_due()
    [(headers, body)] = receiver.requests
    verify(secret, headers, body)
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body.replace(b"true", b"false"))
    with pytest.raises(InvalidSignature):
        verify("whsec_" + "A" * 44, headers, body)
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body, now=time.time() + 301)


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(tenant, receiver):
    endpoint, old = _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    new = endpoint_rotate_secret(endpoint=endpoint, actor=None, overlap=3600)
    _override(tenant, flag, True)
    webhooks_deliver_due()
    headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(old, headers, body)  # receivers not yet switched keep working
    verify(new, headers, body)

    newest = endpoint_rotate_secret(endpoint=endpoint, actor=None, overlap=0)
    _override(tenant, flag, False)
    webhooks_deliver_due()
    headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    verify(newest, headers, body)
    for retired in (old, new):
        with pytest.raises(InvalidSignature):
            verify(retired, headers, body)
    assert AuditEvent.objects.filter(action="webhook.secret_rotate").count() == 2


def test_five_failures_open_the_endpoint_breaker_and_stop_the_requests(tenant, receiver):
    endpoint, _ = _endpoint(receiver.url, tenant=tenant)
    receiver.status = 500
    _override(tenant, make_flag("beta"), True)

    with override_settings(WEBHOOKS_BREAKER_RESET=60):
        _rounds(8)

    assert len(receiver.requests) == 5
    assert breaker(endpoint.breaker_name).current_state == "open"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 5
    assert delivery.last_status_code == 500 and "not sent" in delivery.last_error
    assert WebhookAttempt.objects.filter(delivery=delivery, succeeded=False).count() == 5


def test_breakers_page_lists_the_endpoint_breaker(tenant, receiver, client):
    endpoint, _ = _endpoint(receiver.url, tenant=tenant)
    receiver.status = 503
    _override(tenant, make_flag("beta"), True)
    with override_settings(WEBHOOKS_BREAKER_RESET=60):
        _rounds(5)
    client.force_login(make_staff())
    page = client.get("/admin/ops/breakers/?format=json").json()
    [row] = [row for row in page["breakers"] if row["name"] == endpoint.breaker_name]
    assert (row["state"], row["fail_max"], row["storage"]) == ("open", 5, "redis")


def test_a_receiver_down_for_a_while_gets_every_event_in_order_once_back(tenant, receiver):
    endpoint, secret = _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    receiver.stop()
    for n in range(6):
        _override(tenant, flag, n % 2 == 0)
    for _ in range(8):  # refused connections: retries, then the breaker opens
        webhooks_deliver_due()
        time.sleep(0.06)
    assert breaker(endpoint.breaker_name).current_state == "open"

    receiver.start()
    deadline = time.monotonic() + 15
    while WebhookDelivery.objects.filter(status="pending").exists() and time.monotonic() < deadline:
        webhooks_deliver_due()
        time.sleep(0.05)

    payloads = receiver.payloads(secret)
    assert [p["data"]["after"]["enabled"] for p in payloads] == [True, False, True, False, True, False]
    ids = [headers["webhook-id"] for headers, _ in receiver.requests]
    expected = list(WebhookDelivery.objects.order_by("id").values_list("event_id", flat=True))
    assert ids == expected  # in order, each once
    assert breaker(endpoint.breaker_name).current_state == "closed"


def test_a_delivery_is_given_up_after_the_retry_window_and_the_queue_moves_on(tenant, receiver):
    _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    receiver.fail_next = 1
    _override(tenant, flag, True)
    _override(tenant, flag, False)
    with override_settings(WEBHOOKS_RETRY_WINDOW=3600):
        webhooks_deliver_due()
        assert len(receiver.requests) == 1
        webhooks_deliver_due(now=timezone.now() + timedelta(hours=1, seconds=1))
    first, second = WebhookDelivery.objects.order_by("id")
    assert first.status == "delivered"  # the retry inside the window
    assert second.status == "delivered"

    receiver.status = 500
    _override(tenant, flag, True)
    _override(tenant, flag, False)
    late = timezone.now() + timedelta(hours=25)
    webhooks_deliver_due(now=late)
    third, fourth = WebhookDelivery.objects.order_by("id")[2:]
    assert third.status == "failed" and fourth.status == "failed"


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    with override_settings(WEBHOOKS_BACKOFF_BASE=5, WEBHOOKS_BACKOFF_MAX=3600):
        for attempts, full in ((1, 5), (2, 10), (5, 80), (20, 3600), (500, 3600)):
            delays = {retry_delay(attempts) for _ in range(20)}
            assert all(full / 2 <= d <= full for d in delays)
            assert len(delays) > 1  # jittered


def test_redirects_are_not_followed(tenant, receiver, second_receiver):
    _endpoint(receiver.url, tenant=tenant)
    receiver.redirect_to = second_receiver.url
    _override(tenant, make_flag("beta"), True)
    webhooks_deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == 307
    assert "not followed" in delivery.last_error
    assert second_receiver.requests == []


def test_oversized_answers_are_read_only_up_to_the_bound(tenant, receiver):
    _endpoint(receiver.url, tenant=tenant)
    receiver.body = b"x" * 2_000_000
    _override(tenant, make_flag("beta"), True)
    with override_settings(WEBHOOKS_RESPONSE_MAX_BYTES=4096):
        webhooks_deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    assert len(delivery.last_response_excerpt) == 1000


def test_slow_receivers_time_out_within_the_bound(tenant, receiver):
    _endpoint(receiver.url, tenant=tenant)
    receiver.delay = 3
    _override(tenant, make_flag("beta"), True)
    started = time.monotonic()
    with override_settings(WEBHOOKS_TIMEOUT=0.5):
        webhooks_deliver_due()
    assert time.monotonic() - started < 2
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "within 0.5s" in delivery.last_error


def test_a_claimed_delivery_is_not_sent_by_a_second_worker(tenant, receiver):
    _endpoint(receiver.url, tenant=tenant)
    _override(tenant, make_flag("beta"), True)
    WebhookDelivery.objects.update(claimed_until=timezone.now() + timedelta(seconds=30))
    webhooks_deliver_due()
    assert receiver.requests == []
    webhooks_deliver_due(now=timezone.now() + timedelta(seconds=31))  # the claimer died: taken over
    assert len(receiver.requests) == 1


def test_manual_redelivery_is_audited_and_sends_the_same_message_again(tenant, receiver):
    _, secret = _endpoint(receiver.url, tenant=tenant)
    _override(tenant, make_flag("beta"), True)
    webhooks_deliver_due()
    staff = make_staff()
    again = delivery_redeliver(delivery=WebhookDelivery.objects.get(), actor=staff)
    webhooks_deliver_due()
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == again.event_id
    assert receiver.payloads(secret)[0] == receiver.payloads(secret)[1]
    assert AuditEvent.objects.filter(action="webhook.redeliver", actor_label=staff.username).count() == 1
    again.refresh_from_db()
    assert again.manual and again.status == "delivered"


def test_a_round_sends_at_most_its_share_to_one_endpoint(tenant, receiver, monkeypatch):
    from webhooks.services import delivery

    monkeypatch.setattr(delivery, "PER_ENDPOINT_ROUND", 2)
    _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    for n in range(5):
        _override(tenant, flag, n % 2 == 0)
    assert webhooks_deliver_due().delivered == 2  # each endpoint is visited once per round
    assert webhooks_deliver_due().delivered == 2
    assert webhooks_deliver_due().delivered == 1


def test_an_endpoint_whose_secret_cannot_be_unsealed_does_not_stop_the_others(tenant, receiver, second_receiver):
    from webhooks.models import WebhookSecret

    broken, _ = _endpoint(receiver.url, tenant=tenant)
    _, secret = _endpoint(second_receiver.url, tenant=tenant)
    WebhookSecret.objects.filter(endpoint=broken).update(sealed="v1.deadbeef.AAAA")  # a key no longer configured
    _override(tenant, make_flag("beta"), True)

    report = webhooks_deliver_due()

    assert report.delivered == 1
    verify(secret, *second_receiver.requests[0])
    assert receiver.requests == []  # nothing unsigned ever leaves
    stuck = WebhookDelivery.objects.get(endpoint=broken)
    assert stuck.status == "pending" and stuck.claimed_until is None
    assert "signing failed" in stuck.last_error and "rotate" in stuck.last_error


@pytest.mark.django_db(transaction=True)
def test_a_commit_wakes_this_process_courier_instead_of_waiting_for_its_poll(receiver, monkeypatch):
    from agentapi_admin.courier import Courier
    from tests.tenants.factories import make_tenant
    from webhooks.services import delivery

    courier = Courier("test-webhooks-courier", webhooks_deliver_due)
    monkeypatch.setattr(delivery, "_courier", courier)
    assert delivery.webhooks_courier_start(interval=60)
    try:
        tenant = make_tenant("acme")
        _, secret = _endpoint(receiver.url, tenant=tenant)
        flag = make_flag("beta")
        started = time.monotonic()
        _override(tenant, flag, True)
        while not receiver.requests and time.monotonic() - started < 10:
            time.sleep(0.01)
        assert time.monotonic() - started < 5  # not the 60 s poll
        assert receiver.payloads(secret)[0]["type"] == "override.set"
    finally:
        courier.stop()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_retires_its_breaker(receiver, redis_client):
    from resilience.breakers.registry import registered_breakers
    from tests.tenants.factories import make_tenant
    from webhooks.services.endpoints import endpoint_delete

    tenant = make_tenant("acme")
    endpoint, _ = _endpoint(receiver.url, tenant=tenant)
    receiver.status = 500
    _override(tenant, make_flag("beta"), True)
    with override_settings(WEBHOOKS_BREAKER_RESET=60):
        _rounds(5)
    name = endpoint.breaker_name
    assert name in registered_breakers() and redis_client.keys(f"agentapi:cb:{name}:*")

    endpoint_delete(endpoint=endpoint, actor=None)

    assert name not in registered_breakers()
    left = redis_client.keys(f"agentapi:cb:{name}:*")
    assert all(":seen:" in k and redis_client.ttl(k) > 0 for k in left)  # only de-dup tokens, expiring by TTL


def test_a_tenant_endpoint_is_checked_again_before_each_request(tenant, receiver):
    _endpoint(receiver.url, tenant=tenant)  # saved while private targets were allowed
    _override(tenant, make_flag("beta"), True)
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False):
        webhooks_deliver_due()
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "not a public address" in delivery.last_error


def test_a_disabled_endpoint_queues_nothing_new_and_resumes_its_backlog_when_enabled(tenant, receiver):
    from webhooks.services.endpoints import endpoint_update

    endpoint, _ = _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    _override(tenant, flag, True)
    endpoint_update(endpoint=endpoint, enabled=False, actor=None)
    _override(tenant, flag, False)
    webhooks_deliver_due()
    assert receiver.requests == [] and WebhookDelivery.objects.count() == 1
    endpoint_update(endpoint=endpoint, enabled=True, actor=None)
    webhooks_deliver_due()
    assert len(receiver.requests) == 1


def test_delivery_outcomes_are_counted_for_prometheus(tenant, receiver):
    from tests.observability.conftest import sample

    outcomes = ("delivered", "retrying", "held_by_breaker")
    before = {o: sample("agentapi_webhook_deliveries_total", outcome=o) for o in outcomes}
    _endpoint(receiver.url, tenant=tenant)
    flag = make_flag("beta")
    _override(tenant, flag, True)
    webhooks_deliver_due()
    receiver.status = 500
    _override(tenant, flag, False)
    with override_settings(WEBHOOKS_BREAKER_RESET=60):
        _rounds(6)
    after = {o: sample("agentapi_webhook_deliveries_total", outcome=o) - before[o] for o in outcomes}
    assert after == {"delivered": 1, "retrying": 5, "held_by_breaker": 1}


def test_an_operator_pauses_an_endpoint_by_forcing_its_breaker_open(tenant, receiver):
    from resilience.breakers.services import breaker_force_open, breaker_reset

    endpoint, _ = _endpoint(receiver.url, tenant=tenant)
    _override(tenant, make_flag("beta"), True)
    staff = make_staff()
    endpoint_breaker_name = endpoint.breaker_name
    breaker(endpoint_breaker_name, fail_max=5, reset_timeout=60)
    breaker_force_open(name=endpoint_breaker_name, actor=staff, reason="receiver migrating")
    assert webhooks_deliver_due().held_by_breaker == 1 and receiver.requests == []
    breaker_reset(name=endpoint_breaker_name, actor=staff, reason="migration done")
    webhooks_deliver_due(now=timezone.now() + timedelta(seconds=61))
    assert len(receiver.requests) == 1


def test_deliveries_keep_flowing_while_redis_is_down(tenant, receiver, redis_server):
    _, secret = _endpoint(receiver.url, tenant=tenant)
    redis_server.kill()
    _override(tenant, make_flag("beta"), True)  # the change commits; its cache invalidation waits in the outbox
    assert webhooks_deliver_due().delivered == 1
    verify(secret, *receiver.requests[0])
