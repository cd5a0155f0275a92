"""Admin API, webhook endpoints: list/get/create/update/rotate/delete, deliveries and redelivery, all audited."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import grant, make_operator, make_token
from tests.tenants.factories import make_tenant
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSecret
from webhooks.selectors import endpoint_active_secrets
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://hooks.example.com/in"


def _endpoint(tenant=None, url=PUBLIC_URL, event_types=("tenant.status_changed",)):
    endpoint, secret = endpoint_create(tenant=tenant, url=url, event_types=list(event_types), actor=None)
    return endpoint, secret


def _delivery(endpoint, event_id="evt_1", status=WebhookDelivery.Status.FAILED):
    event = WebhookEvent.objects.create(id=event_id, type="tenant.status_changed", tenant=endpoint.tenant, payload={})
    return WebhookDelivery.objects.create(endpoint=endpoint, event=event, status=status, next_attempt_at=timezone.now())


def _no_secret_in(response, *secrets):
    text = response.content.decode()
    assert "whsec_" not in text and "secret" not in response.json()
    assert not any(secret in text for secret in secrets)


def test_list_pages_and_filters_by_tenant_or_platform(api, plan):
    acme, beta = make_tenant("acme", plan=plan), make_tenant("beta", plan=plan)
    platform, s1 = _endpoint()
    mine, s2 = _endpoint(acme)
    _endpoint(beta)
    first = api.get("/webhook-endpoints?limit=2")
    assert first.status_code == 200 and first["ETag"]
    body = first.json()
    assert [e["id"] for e in body["items"]] == [platform.pk, mine.pk] and body["next_cursor"]
    second = api.get(f"/webhook-endpoints?limit=2&cursor={body['next_cursor']}").json()
    assert [e["tenant"] for e in second["items"]] == ["beta"] and second["next_cursor"] is None
    assert [e["id"] for e in api.get("/webhook-endpoints?tenant=acme").json()["items"]] == [mine.pk]
    only_platform = api.get("/webhook-endpoints?platform=true")
    assert [e["tenant"] for e in only_platform.json()["items"]] == [None]
    assert len(api.get("/webhook-endpoints?platform=false").json()["items"]) == 2
    _no_secret_in(first, s1, s2)
    assert all("secret" not in item for item in body["items"])
    problem(api.get("/webhook-endpoints?tenant=nope"), 404, "not_found", "tenant")
    problem(api.get("/webhook-endpoints?tenant=acme&platform=true"), 400, "invalid_request", "platform")
    problem(api.get("/webhook-endpoints?cursor=forged"), 400, "invalid_cursor", "cursor")


def test_get_answers_the_endpoint_without_its_secret_with_an_etag_and_304(api, plan):
    endpoint, secret = _endpoint(make_tenant("acme", plan=plan))
    response = api.get(f"/webhook-endpoints/{endpoint.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == "acme" and body["url"] == PUBLIC_URL and body["event_types"] == ["tenant.status_changed"]
    _no_secret_in(response, secret, WebhookSecret.objects.get(endpoint=endpoint).hint)
    assert api.get(f"/webhook-endpoints/{endpoint.pk}", If_None_Match=response["ETag"]).status_code == 304
    problem(api.get("/webhook-endpoints/999999"), 404, "not_found", "endpoint_id")


def test_create_shows_the_secret_once_and_is_audited_as_the_tokens_user(api, token, plan):
    make_tenant("acme", plan=plan)
    body = {"tenant": "acme", "url": PUBLIC_URL, "event_types": ["key.issued", "key.revoked"], "description": "ci"}
    response = api.post("/webhook-endpoints", body)
    assert response.status_code == 201, response.content
    created = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert created["secret"].startswith("whsec_") and endpoint_active_secrets(endpoint) == [created["secret"]]
    assert response["Cache-Control"] == "no-store" and response["Location"].endswith(
        f"/webhook-endpoints/{endpoint.pk}"
    )
    again = api.get(f"/webhook-endpoints/{endpoint.pk}")
    assert again["ETag"] == response["ETag"]
    _no_secret_in(again, created["secret"])
    event = AuditEvent.objects.get(action="webhook.endpoint_create")
    assert event.actor_user == token[0].user and event.tenant.slug == "acme"
    assert f"[via staff token {token[0].prefix}]" in event.reason and created["secret"] not in str(event.after)
    platform = api.post("/webhook-endpoints", {"url": "http://127.0.0.1:9/x", "event_types": ["flag.changed"]})
    assert platform.status_code == 201 and platform.json()["tenant"] is None  # a platform endpoint may be private


def test_create_refusals(api, plan):
    make_tenant("acme", plan=plan)
    good = {"tenant": "acme", "url": PUBLIC_URL, "event_types": ["key.issued"]}
    problem(api.post("/webhook-endpoints", {**good, "url": "ftp://example.com/x"}), 422, "invalid_request", "url")
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False):
        for private in ("http://127.0.0.1/x", "https://10.0.0.5/in", "http://localhost:8000/", "http://[::1]/"):
            problem(api.post("/webhook-endpoints", {**good, "url": private}), 422, "invalid_request", "url")
    problem(api.post("/webhook-endpoints", {**good, "event_types": ["nope"]}), 422, "invalid_request", "event_types")
    problem(api.post("/webhook-endpoints", {**good, "event_types": []}), 422, "invalid_request", "event_types")
    problem(api.post("/webhook-endpoints", {**good, "tenant": "nope"}), 404, "not_found", "tenant")
    problem(api.post("/webhook-endpoints", {"tenant": "acme"}), 422, "invalid_request", "url")
    problem(api.post("/webhook-endpoints", raw="{not json"), 400, "malformed_json", "body")
    assert not WebhookEndpoint.objects.exists() and not AuditEvent.objects.filter(action__startswith="webhook").exists()


def test_idempotency_key_replays_the_create_without_the_secret(api, plan, redis_client):
    body = {"url": PUBLIC_URL, "event_types": ["flag.changed"]}
    first = api.post("/webhook-endpoints", body, Idempotency_Key="w-1")
    again = api.post("/webhook-endpoints", body, Idempotency_Key="w-1")
    assert first.status_code == again.status_code == 201 and again["Idempotency-Replayed"] == "true"
    assert first.json()["secret"] and again.json()["secret"] is None
    assert {**again.json(), "secret": None} == {**first.json(), "secret": None} and again["ETag"] == first["ETag"]
    assert WebhookEndpoint.objects.count() == 1
    assert AuditEvent.objects.filter(action="webhook.endpoint_create").count() == 1
    stored = [redis_client.get(name) for name in redis_client.scan_iter("agentapi:idem:*")]
    assert stored and not any(first.json()["secret"] in (record or "") for record in stored)
    problem(
        api.post("/webhook-endpoints", {**body, "url": PUBLIC_URL + "2"}, Idempotency_Key="w-1"),
        422,
        "idempotency_key_reused",
    )


def test_update_requires_if_match_and_goes_through_the_service(api, plan):
    endpoint, _ = _endpoint(make_tenant("acme", plan=plan))
    path = f"/webhook-endpoints/{endpoint.pk}"
    etag = api.get(path)["ETag"]
    problem(api.patch(path, {"enabled": False}), 428, "precondition_required", "If-Match")
    changed = api.patch(path, {"enabled": False, "description": "paused"}, If_Match=etag)
    assert changed.status_code == 200 and changed.json()["enabled"] is False and changed["ETag"] != etag
    event = AuditEvent.objects.get(action="webhook.endpoint_update")
    assert event.before["enabled"] is True and event.after["enabled"] is False
    problem(api.patch(path, {"enabled": True}, If_Match=etag), 412, "precondition_failed", "If-Match")
    current = changed["ETag"]
    problem(api.patch(path, {}, If_Match=current), 422, "empty_update", "body")
    problem(api.patch(path, {"url": "ftp://x.example/"}, If_Match=current), 422, "invalid_request", "url")
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False):
        problem(api.patch(path, {"url": "http://192.168.1.1/"}, If_Match=current), 422, "invalid_request", "url")
    problem(api.patch(path, {"url": None}, If_Match=current), 422, "invalid_request", "url")
    problem(api.patch("/webhook-endpoints/999999", {"enabled": True}, If_Match=current), 404, "not_found")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).url == PUBLIC_URL


def test_rotate_shows_the_new_secret_once_and_the_old_one_overlaps(api, token, plan):
    endpoint, old = _endpoint()
    path = f"/webhook-endpoints/{endpoint.pk}"
    etag = api.get(path)["ETag"]
    problem(api.post(f"{path}/rotate-secret"), 428, "precondition_required", "If-Match")
    problem(
        api.post(f"{path}/rotate-secret?overlap_seconds=-1", If_Match=etag), 400, "invalid_request", "overlap_seconds"
    )
    rotated = api.post(f"{path}/rotate-secret?overlap_seconds=3600", If_Match=etag)
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old and rotated["Cache-Control"] == "no-store"
    assert rotated.json()["previous_secrets_expire_at"] and endpoint_active_secrets(endpoint) == [new, old]
    event = AuditEvent.objects.get(action="webhook.secret_rotate")
    assert event.actor_user == token[0].user and new not in str(event.after)
    _no_secret_in(api.get(path), new, old)
    problem(api.post("/webhook-endpoints/999999/rotate-secret", If_Match=etag), 404, "not_found")


def test_delete_requires_if_match(api, plan):
    endpoint, _ = _endpoint()
    path = f"/webhook-endpoints/{endpoint.pk}"
    etag = api.get(path)["ETag"]
    problem(api.delete(path), 428, "precondition_required")
    problem(api.delete(path, If_Match='"stale"'), 412, "precondition_failed")
    assert api.delete(path, If_Match=etag).status_code == 204
    assert not WebhookEndpoint.objects.exists() and AuditEvent.objects.filter(action="webhook.endpoint_delete").exists()
    problem(api.delete(path, If_Match=etag), 404, "not_found", "endpoint_id")


def test_deliveries_page_newest_first_and_redeliver_queues_again(api, token, plan):
    endpoint, _ = _endpoint(make_tenant("acme", plan=plan))
    other, _ = _endpoint()
    first, second = _delivery(endpoint, "evt_1"), _delivery(endpoint, "evt_2", WebhookDelivery.Status.DELIVERED)
    stranger = _delivery(other, "evt_3")
    path = f"/webhook-endpoints/{endpoint.pk}/deliveries"
    page1 = api.get(f"{path}?limit=1")
    assert page1.status_code == 200 and page1["ETag"]
    assert [d["id"] for d in page1.json()["items"]] == [second.pk]
    page2 = api.get(f"{path}?limit=1&cursor={page1.json()['next_cursor']}").json()
    assert [d["event_id"] for d in page2["items"]] == ["evt_1"] and page2["next_cursor"] is None
    assert [d["id"] for d in api.get(f"{path}?status=failed").json()["items"]] == [first.pk]
    again = api.post(f"{path}/{first.pk}/redeliver")
    assert again.status_code == 201, again.content
    body = again.json()
    assert body["manual"] is True and body["status"] == "pending" and body["event_id"] == "evt_1"
    event = AuditEvent.objects.get(action="webhook.redeliver")
    assert event.actor_user == token[0].user and event.tenant.slug == "acme"
    problem(api.post(f"{path}/{stranger.pk}/redeliver"), 404, "not_found", "delivery_id")
    problem(api.post("/webhook-endpoints/999999/deliveries/1/redeliver"), 404, "not_found", "endpoint_id")
    problem(api.get("/webhook-endpoints/999999/deliveries"), 404, "not_found", "endpoint_id")
    problem(api.get(f"{path}?status=lost"), 400, "invalid_request", "status")


def test_missing_token_scope_or_permission_is_refused(api, plan):
    endpoint, _ = _endpoint()
    delivery = _delivery(endpoint)
    anonymous = AdminApi("")
    response = problem(anonymous.get("/webhook-endpoints"), 401, "missing_token")
    assert response and anonymous.get("/webhook-endpoints")["WWW-Authenticate"].startswith("Bearer")
    reader = AdminApi(make_token(make_operator("reader"), scopes=("webhooks:read",))[1])
    assert reader.get("/webhook-endpoints").status_code == 200
    problem(
        reader.post("/webhook-endpoints", {"url": PUBLIC_URL, "event_types": ["flag.changed"]}),
        403,
        "insufficient_scope",
    )
    problem(
        reader.post(f"/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/redeliver"), 403, "insufficient_scope"
    )
    no_webhooks = AdminApi(make_token(make_operator("tenants-only"), scopes=("tenants:read",))[1])
    problem(no_webhooks.get("/webhook-endpoints"), 403, "insufficient_scope")
    # A token keeps its scopes, but its user's permissions are checked on each request.
    writer = make_operator("writer", scopes=("webhooks:read", "webhooks:write"))
    writer_api = AdminApi(make_token(writer, scopes=("webhooks:read", "webhooks:write"))[1])
    writer.user_permissions.remove(*writer.user_permissions.filter(codename__in=["redeliver", "view_webhookdelivery"]))
    redeliver = writer_api.post(f"/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/redeliver")
    assert "webhooks.redeliver" in problem(redeliver, 403, "permission_denied")["detail"]
    problem(writer_api.get(f"/webhook-endpoints/{endpoint.pk}/deliveries"), 403, "permission_denied")
    assert writer_api.get(f"/webhook-endpoints/{endpoint.pk}").status_code == 200
    grant(writer, "webhooks.redeliver")
    assert writer_api.post(f"/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/redeliver").status_code == 201
