"""The admin: endpoints created and rotated through the services (secret shown once), the delivery log, redelivery."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEvent
from tenants.services.flags import flag_set_override
from tests.hardening.conftest import staff_with
from tests.tenants.factories import make_flag, make_staff
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.delivery import webhooks_deliver_due
from webhooks.services.endpoints import endpoint_create

from .conftest import verify

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


@pytest.fixture
def staff_client(client):
    client.force_login(make_staff())
    return client


def _secrets(response) -> list[str]:
    return re.findall(r"whsec_[A-Za-z0-9+/=]+", response.content.decode())


def test_staff_create_an_endpoint_and_see_its_secret_once(staff_client, tenant, receiver):
    response = staff_client.post(
        ENDPOINTS + "add/",
        {
            "tenant": tenant.pk,
            "url": receiver.url,
            "description": "ops",
            "event_types": ["override.set"],
            "enabled": "on",
        },
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [secret] = _secrets(response)
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.tenant, endpoint.event_types) == (tenant, ["override.set"])
    assert AuditEvent.objects.filter(action="webhook.endpoint_create").count() == 1
    page = staff_client.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
    assert secret not in page and secret[:12] in page  # only the hint, never the secret again

    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=None)
    webhooks_deliver_due()
    verify(secret, *receiver.requests[0])


@pytest.mark.parametrize(
    ("url", "types", "error"),
    [
        ("ftp://hooks.example.com/", ["override.set"], "Only http:// and https://"),
        ("https://hooks.example.com/", [], "This field is required"),
        ("https://hooks.example.com/", ["nope"], "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error(staff_client, url, types, error):
    response = staff_client.post(ENDPOINTS + "add/", {"url": url, "event_types": types, "enabled": "on"})
    assert response.status_code == 200 and error in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_rotate_action_shows_the_new_secret_and_both_sign(staff_client, receiver):
    endpoint, old = endpoint_create(tenant=None, url=receiver.url, event_types=["flag.changed"], actor=None)
    response = staff_client.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    [new] = _secrets(response)
    assert new != old and "keep signing" in response.content.decode()
    make_flag("beta")
    webhooks_deliver_due()
    verify(old, *receiver.requests[0])
    verify(new, *receiver.requests[0])


def test_delivery_log_shows_status_latency_excerpt_and_attempts(staff_client, tenant, receiver):
    endpoint_create(tenant=tenant, url=receiver.url, event_types=["override.set"], actor=None)
    receiver.fail_next, receiver.body = 1, b"receiver says hello"
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=None)
    webhooks_deliver_due()
    delivery = WebhookDelivery.objects.get()
    listing = staff_client.get(DELIVERIES).content.decode()
    assert "override.set" in listing and "pending" in listing
    detail = staff_client.get(f"{DELIVERIES}{delivery.pk}/change/").content.decode()
    assert "receiver says hello" in detail and "HTTP 500" in detail and delivery.event_id in detail


def test_redelivery_is_an_audited_action_refused_without_the_permission(client, tenant, receiver):
    endpoint_create(tenant=tenant, url=receiver.url, event_types=["override.set"], actor=None)
    flag_set_override(tenant=tenant, flag=make_flag("beta"), enabled=True, actor=None)
    webhooks_deliver_due()
    delivery = WebhookDelivery.objects.get()
    form = {"action": "redeliver", "_selected_action": [delivery.pk]}

    client.force_login(staff_with("viewer", "webhooks.view_webhookdelivery", "webhooks.change_webhookdelivery"))
    assert client.post(DELIVERIES, form).status_code == 403
    assert WebhookDelivery.objects.count() == 1

    client.force_login(staff_with("operator", "webhooks.view_webhookdelivery", "webhooks.redeliver"))
    client.post(DELIVERIES, form)
    again = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
    assert again.manual and again.status == "pending"
    assert AuditEvent.objects.filter(action="webhook.redeliver", actor_label="operator").count() == 1
    webhooks_deliver_due()
    assert [h["webhook-id"] for h, _ in receiver.requests] == [delivery.event_id, delivery.event_id]


def test_deleting_an_endpoint_takes_its_log_and_is_audited(staff_client):
    endpoint, _ = endpoint_create(
        tenant=None, url="https://hooks.example.com/", event_types=["flag.changed"], actor=None
    )
    make_flag("beta")
    assert WebhookDelivery.objects.count() == 1
    staff_client.post(f"{ENDPOINTS}{endpoint.pk}/delete/", {"post": "yes"})
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.endpoint_delete").count() == 1


def test_endpoint_pages_render_while_redis_is_down(staff_client, redis_server):
    endpoint, _ = endpoint_create(
        tenant=None, url="https://hooks.example.com/", event_types=["flag.changed"], actor=None
    )
    redis_server.kill()
    listing = staff_client.get(ENDPOINTS)
    detail = staff_client.get(f"{ENDPOINTS}{endpoint.pk}/change/")
    assert listing.status_code == detail.status_code == 200
    assert "closed" in detail.content.decode()  # the breaker answers from process memory
