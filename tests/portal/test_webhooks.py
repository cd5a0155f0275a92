"""Webhook endpoints in the portal: owners and admins manage their tenant's own, members see none."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from audit.models import AuditEvent
from tests.webhooks.conftest import verify
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.delivery import webhooks_deliver_due
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db


def _url(name, world, **kwargs):
    return reverse(f"portal:{name}", kwargs={"tenant": world.a.slug, **kwargs})


def _secret(response) -> str:
    [secret] = re.findall(r"whsec_[A-Za-z0-9+/=]+", response.content.decode())
    return secret


def test_owner_creates_an_endpoint_sees_the_secret_once_and_it_signs(world, owner_client):
    from tests.webhooks.conftest import Receiver

    receiver = Receiver()
    try:
        with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=True):
            response = owner_client.post(
                _url("webhooks", world),
                {
                    "url": receiver.url,
                    "description": "ci",
                    "event_types": ["key.issued", "key.revoked"],
                    "enabled": "on",
                },
            )
            assert response.status_code == 200 and "no-store" in response["Cache-Control"]
            secret = _secret(response)
            endpoint = WebhookEndpoint.objects.get(tenant=world.a, description="ci")
            assert endpoint.event_types == ["key.issued", "key.revoked"] and endpoint.enabled
            listing = owner_client.get(_url("webhooks", world)).content.decode()
            assert receiver.url in listing and secret not in listing

            owner_client.post(_url("keys", world), {"name": "new replica", "scopes": ["config:read"]})
            webhooks_deliver_due()
        [(headers, body)] = receiver.requests
        assert verify(secret, headers, body)["type"] == "key.issued"
    finally:
        receiver.stop()


def test_tenant_endpoints_refuse_private_addresses_and_bad_input_as_form_errors(world, owner_client):
    for data, error in [
        ({"url": "http://127.0.0.1:9000/", "event_types": ["key.issued"]}, "public internet"),
        ({"url": "ftp://hooks.example.com/", "event_types": ["key.issued"]}, "Only http:// and https://"),
        ({"url": "https://hooks.example.com/", "event_types": []}, "Choose at least one event"),
        ({"url": "https://hooks.example.com/", "event_types": ["breaker.opened"]}, "is not an event"),
    ]:
        response = owner_client.post(_url("webhooks", world), data)
        assert response.status_code == 400 and error in response.content.decode(), data
    assert WebhookEndpoint.objects.filter(tenant=world.a).count() == 1  # the world's own


def test_admin_edits_rotates_and_deletes_and_each_is_audited(world, admin_client_a):
    endpoint = world.a_endpoint
    detail = _url("webhook_detail", world, endpoint_id=endpoint.pk)
    response = admin_client_a.post(
        detail, {"url": "https://hooks.acme.test/v2", "event_types": ["key.revoked"], "description": "v2"}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types) == ("https://hooks.acme.test/v2", ["key.revoked"])
    assert not endpoint.enabled  # the box was not ticked

    rotated = admin_client_a.post(_url("webhook_rotate", world, endpoint_id=endpoint.pk))
    assert rotated.status_code == 200 and _secret(rotated) and "no-store" in rotated["Cache-Control"]
    assert endpoint.secrets.count() == 2

    assert admin_client_a.get(_url("webhook_delete", world, endpoint_id=endpoint.pk)).status_code == 200
    admin_client_a.post(_url("webhook_delete", world, endpoint_id=endpoint.pk))
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    actions = set(AuditEvent.objects.filter(tenant=world.a).values_list("action", flat=True))
    assert {"webhook.endpoint_update", "webhook.secret_rotate", "webhook.endpoint_delete"} <= actions


def test_the_endpoint_page_shows_recent_deliveries(world, owner_client):
    endpoint, _ = endpoint_create(
        tenant=world.a, url="https://hooks.acme.test/log", event_types=["key.issued"], actor=None
    )
    owner_client.post(_url("keys", world), {"name": "logged", "scopes": ["config:read"]})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    page = owner_client.get(_url("webhook_detail", world, endpoint_id=endpoint.pk)).content.decode()
    assert "key.issued" in page and "pending" in page and delivery.event_id in page


def test_members_are_refused_and_platform_endpoints_are_never_listed(world, member_client, owner_client):
    endpoint_create(tenant=None, url="https://ops.internal.test/all", event_types=["key.issued"], actor=None)
    assert member_client.get(_url("webhooks", world)).status_code == 403
    page = owner_client.get(_url("webhooks", world)).content.decode()
    assert "ops.internal.test" not in page and world.b_endpoint.url not in page


def test_the_portal_never_shows_the_receiver_s_answer(world, owner_client):
    from tests.webhooks.conftest import Receiver

    receiver = Receiver()
    receiver.body = b"internal-answer-body"
    try:
        with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=True):
            endpoint, _ = endpoint_create(tenant=world.a, url=receiver.url, event_types=["key.issued"], actor=None)
            owner_client.post(_url("keys", world), {"name": "answer", "scopes": ["config:read"]})
            webhooks_deliver_due()
        page = owner_client.get(_url("webhook_detail", world, endpoint_id=endpoint.pk)).content.decode()
        assert "delivered" in page and "internal-answer-body" not in page
    finally:
        receiver.stop()
