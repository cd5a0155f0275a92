"""Admin API, tenants: list/get/create/update/suspend/resume with ETags, If-Match, Idempotency-Key, problems."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Tenant
from tests.automation.conftest import problem
from tests.tenants.factories import make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


def test_list_pages_with_a_cursor_and_filters(api, plan):
    other = make_plan("gold")
    for slug in ("acme", "beta", "gamma"):
        make_tenant(slug, plan=plan)
    make_tenant("delta", plan=other)
    first = api.get("/tenants?limit=2")
    assert first.status_code == 200 and first["ETag"] and first["RateLimit-Limit"]
    body = first.json()
    assert [t["slug"] for t in body["items"]] == ["acme", "beta"] and body["next_cursor"]
    second = api.get(f"/tenants?limit=2&cursor={body['next_cursor']}").json()
    assert [t["slug"] for t in second["items"]] == ["delta", "gamma"] and second["next_cursor"] is None
    assert [t["slug"] for t in api.get("/tenants?plan=gold").json()["items"]] == ["delta"]
    assert [t["slug"] for t in api.get("/tenants?q=amm").json()["items"]] == ["gamma"]
    assert api.get("/tenants?status=suspended").json()["items"] == []


def test_list_refuses_a_forged_cursor_and_bad_parameters(api):
    problem(api.get("/tenants?cursor=not-a-cursor"), 400, "invalid_cursor", "cursor")
    problem(api.get("/tenants?limit=0"), 400, "invalid_request", "limit")
    problem(api.get("/tenants?status=zombie"), 400, "invalid_request", "status")


def test_get_answers_the_tenant_with_an_etag_and_304(api, plan):
    make_tenant("acme", plan=plan, settings={"agent_type": "goose"})
    response = api.get("/tenants/acme")
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "acme" and body["plan"] == "standard" and body["settings"]["agent_type"] == "goose"
    assert api.get("/tenants/acme", If_None_Match=response["ETag"]).status_code == 304
    problem(api.get("/tenants/nope"), 404, "not_found", "slug")


def test_create_is_audited_as_the_tokens_user_with_the_token_as_provenance(api, token, plan):
    response = api.post("/tenants", {"slug": "acme", "name": "Acme", "plan": "standard", "status": "active"})
    assert response.status_code == 201, response.content
    assert response["Location"].endswith("/tenants/acme") and response["ETag"]
    assert Tenant.objects.get(slug="acme").status == "active"
    event = AuditEvent.objects.get(action="tenant.create")
    assert event.actor_user == token[0].user and event.actor_label == "robot"
    assert f"[via staff token {token[0].prefix}]" in event.reason and event.ip == "127.0.0.1"


def test_create_refusals(api, plan):
    make_tenant("acme", plan=plan)
    problem(api.post("/tenants", {"slug": "acme", "name": "A", "plan": "standard"}), 409, "conflict", "slug")
    problem(api.post("/tenants", {"slug": "new", "name": "N", "plan": "nope"}), 422, "unknown_plan", "plan")
    problem(api.post("/tenants", {"slug": "bad slug", "name": "N", "plan": "standard"}), 422, "invalid_request", "slug")
    problem(api.post("/tenants", {"name": "N", "plan": "standard"}), 422, "invalid_request", "slug")
    problem(api.post("/tenants", raw="{not json"), 400, "malformed_json", "body")
    bad_settings = {"slug": "new", "name": "N", "plan": "standard", "settings": {"agent_type": 7}}
    body = problem(api.post("/tenants", bad_settings), 422, "invalid_request")
    assert "agent_type" in body["detail"]
    assert not Tenant.objects.filter(slug="new").exists()


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(api, plan, redis_client):
    body = {"slug": "acme", "name": "Acme", "plan": "standard"}
    first = api.post("/tenants", body, Idempotency_Key="k-1")
    again = api.post("/tenants", body, Idempotency_Key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["ETag"] == first["ETag"] and again["Idempotency-Replayed"] == "true"
    assert Tenant.objects.filter(slug="acme").count() == 1
    assert AuditEvent.objects.filter(action="tenant.create").count() == 1
    problem(api.post("/tenants", {**body, "name": "Other"}, Idempotency_Key="k-1"), 422, "idempotency_key_reused")
    problem(api.post("/tenants", body, Idempotency_Key="x" * 256), 400, "invalid_idempotency_key", "Idempotency-Key")
    assert any(redis_client.ttl(name) > 3600 for name in redis_client.scan_iter("agentapi:idem:*"))


def test_a_failed_create_does_not_hold_its_idempotency_key(api, plan):
    body = {"slug": "acme", "name": "Acme", "plan": "nope"}
    problem(api.post("/tenants", body, Idempotency_Key="k-2"), 422, "unknown_plan")
    fixed = api.post("/tenants", {**body, "plan": "standard"}, Idempotency_Key="k-2")
    assert fixed.status_code == 201


def test_idempotency_key_needs_redis(api, plan, redis_server):
    redis_server.kill()
    try:
        body = {"slug": "acme", "name": "Acme", "plan": "standard"}
        response = api.post("/tenants", body, Idempotency_Key="k-3")
    finally:
        redis_server.restart()
    problem(response, 503, "idempotency_unavailable")
    assert response["Retry-After"] == "1" and not Tenant.objects.filter(slug="acme").exists()


def test_update_requires_if_match_and_refuses_a_lost_update(api, plan):
    make_tenant("acme", plan=plan)
    gold = make_plan("gold")
    etag = api.get("/tenants/acme")["ETag"]
    problem(api.patch("/tenants/acme", {"name": "Acme Inc"}), 428, "precondition_required", "If-Match")
    changed = api.patch("/tenants/acme", {"name": "Acme Inc", "plan": "gold"}, If_Match=etag)
    assert changed.status_code == 200 and changed.json()["name"] == "Acme Inc" and changed.json()["plan"] == "gold"
    assert changed["ETag"] != etag and Tenant.objects.get(slug="acme").plan == gold
    lost = problem(api.patch("/tenants/acme", {"name": "Stale"}, If_Match=etag), 412, "precondition_failed", "If-Match")
    assert lost["detail"] and Tenant.objects.get(slug="acme").name == "Acme Inc"
    problem(api.patch("/tenants/acme", {}, If_Match=changed["ETag"]), 422, "empty_update", "body")
    problem(api.patch("/tenants/acme", {"plan": "nope"}, If_Match=changed["ETag"]), 422, "unknown_plan", "plan")
    problem(api.patch("/tenants/nope", {"name": "x"}, If_Match=etag), 404, "not_found", "slug")


# Effects reach Redis after commit (the outbox), as in production: real transactions.
@pytest.mark.django_db(transaction=True)
def test_suspend_stops_the_service_api_at_once_and_resume_restores_it(api, plan):
    # Resume returns a tenant to the status it was suspended from: an active one here.
    tenant = make_tenant("acme", plan=plan, status="active")
    _, secret = make_key(tenant)
    service = Client()
    assert service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    etag = api.get("/tenants/acme")["ETag"]
    problem(api.post("/tenants/acme/suspend", {"reason": "unpaid"}), 428, "precondition_required")
    problem(api.post("/tenants/acme/suspend", {}, If_Match=etag), 422, "invalid_request", "reason")
    suspended = api.post("/tenants/acme/suspend", {"reason": "unpaid"}, If_Match=etag)
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    refused = service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 403 and refused.json()["error"] == "tenant_suspended"
    assert "unpaid [via staff token" in AuditEvent.objects.get(action="tenant.suspend").reason
    resumed = api.post("/tenants/acme/resume", If_Match=suspended["ETag"])
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_a_deleted_tenant_cannot_be_suspended_or_resumed(api, plan):
    from tenants.services.tenants import tenant_offboard

    tenant_offboard(tenant=make_tenant("gone", plan=plan), reason="offboarded", actor=None)
    etag = api.get("/tenants/gone")["ETag"]
    problem(api.post("/tenants/gone/suspend", {"reason": "x"}, If_Match=etag), 409, "tenant_deleted")
    problem(api.post("/tenants/gone/resume", If_Match=etag), 409, "tenant_deleted")


def test_unknown_paths_and_methods_are_problems(api):
    problem(api.get("/nothing-here"), 404, "not_found")
    response = api.delete("/tenants")
    problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_labels_are_created_replaced_and_cleared_and_bad_ones_name_the_field(api, plan):
    created = api.post("/tenants", {"slug": "acme", "name": "Acme", "plan": "standard", "labels": ["EU", "beta", "eu"]})
    assert created.status_code == 201 and created.json()["labels"] == ["beta", "eu"]
    replaced = api.patch("/tenants/acme", {"labels": ["us"]}, If_Match=created["ETag"])
    assert replaced.status_code == 200 and replaced.json()["labels"] == ["us"]
    assert Tenant.objects.get(slug="acme").labels == ["us"]
    event = AuditEvent.objects.filter(action="tenant.update").latest("id")
    assert (event.before["labels"], event.after["labels"]) == (["beta", "eu"], ["us"])
    cleared = api.patch("/tenants/acme", {"labels": None}, If_Match=replaced["ETag"])
    assert cleared.json()["labels"] == []
    problem(
        api.patch("/tenants/acme", {"labels": ["-bad"]}, If_Match=cleared["ETag"]), 422, "invalid_request", "labels"
    )
    problem(api.patch("/tenants/acme", {"labels": [5]}, If_Match=cleared["ETag"]), 422, "invalid_request", "labels[0]")
    problem(
        api.post("/tenants", {"slug": "x", "name": "X", "plan": "standard", "labels": ["a b"]}),
        422,
        "invalid_request",
        "labels",
    )
    assert not Tenant.objects.filter(slug="x").exists()
