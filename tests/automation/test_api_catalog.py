"""Admin API, plans, flags and overrides: success and every refusal, as problems."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Plan, TenantFlag
from tests.automation.conftest import problem
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------- plans
def test_plans_list_get_create_update(api, token):
    make_plan("basic")
    make_flag("beta")
    listed = api.get("/plans?limit=1").json()
    assert [p["code"] for p in listed["items"]] == ["basic"] and listed["next_cursor"] is None
    created = api.post(
        "/plans", {"code": "gold", "name": "Gold", "rate_limit_per_minute": 600, "default_flags": {"beta": True}}
    )
    assert created.status_code == 201 and created.json()["default_flags"] == {"beta": True}
    assert api.get("/plans?limit=1").json()["next_cursor"]
    got = api.get("/plans/gold")
    assert got.json()["rate_limit_per_minute"] == 600
    updated = api.patch("/plans/gold", {"burst": 5, "daily_quota": None}, If_Match=got["ETag"])
    assert updated.status_code == 200 and updated.json()["burst"] == 5 and Plan.objects.get(code="gold").burst == 5
    assert "[via staff token" in AuditEvent.objects.filter(action="plan.update").get().reason


def test_plan_refusals(api):
    make_plan("basic")
    make_flag("beta")
    problem(api.post("/plans", {"code": "basic", "name": "B"}), 409, "conflict", "code")
    problem(api.post("/plans", {"code": "x", "name": "X", "default_flags": {"nope": True}}), 422, "invalid_request")
    problem(api.post("/plans", {"code": "x", "name": "X", "rate_limit_per_minute": 0}), 422, "invalid_request")
    problem(api.get("/plans/nope"), 404, "not_found", "code")
    etag = api.get("/plans/basic")["ETag"]
    problem(api.patch("/plans/basic", {"name": "B2"}), 428, "precondition_required")
    problem(api.patch("/plans/basic", {"name": "B2"}, If_Match='"stale"'), 412, "precondition_failed")
    problem(api.patch("/plans/basic", {"name": None}, If_Match=etag), 422, "invalid_request", "name")
    problem(api.patch("/plans/basic", {}, If_Match=etag), 422, "empty_update")


def test_plan_create_replays_with_idempotency_key(api):
    first = api.post("/plans", {"code": "gold", "name": "Gold"}, Idempotency_Key="p-1")
    again = api.post("/plans", {"code": "gold", "name": "Gold"}, Idempotency_Key="p-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    problem(api.post("/plans", {"code": "gold", "name": "Other"}, Idempotency_Key="p-1"), 422, "idempotency_key_reused")


# ------------------------------------------------------------------------------- flags
def test_flags_list_get_create_update(api):
    created = api.post("/flags", {"key": "beta", "description": "Beta", "tenant_editable": True})
    assert created.status_code == 201 and created.json()["tenant_editable"] is True
    assert [f["key"] for f in api.get("/flags").json()["items"]] == ["beta"]
    got = api.get("/flags/beta")
    updated = api.patch("/flags/beta", {"default": True, "archived": True}, If_Match=got["ETag"])
    assert updated.status_code == 200 and updated.json()["default"] is True
    assert [f["key"] for f in api.get("/flags?archived=true").json()["items"]] == ["beta"]
    assert api.get("/flags?archived=false").json()["items"] == []


def test_flag_refusals(api):
    make_flag("beta")
    problem(api.post("/flags", {"key": "beta"}), 409, "conflict", "key")
    problem(api.post("/flags", {"key": "Not Valid"}), 422, "invalid_request", "key")
    problem(api.get("/flags/nope"), 404, "not_found", "key")
    etag = api.get("/flags/beta")["ETag"]
    problem(api.patch("/flags/beta", {"default": True}), 428, "precondition_required")
    problem(api.patch("/flags/beta", {"default": None}, If_Match=etag), 422, "invalid_request", "default")
    problem(api.patch("/flags/beta", {"default": "maybe"}, If_Match=etag), 422, "invalid_request", "default")
    api.patch("/flags/beta", {"default": True}, If_Match=etag)
    problem(api.patch("/flags/beta", {"default": False}, If_Match=etag), 412, "precondition_failed")


# --------------------------------------------------------------------------- overrides
@pytest.mark.django_db(transaction=True)
def test_override_put_changes_the_service_api_answer_and_delete_restores_it(api, plan):
    tenant = make_tenant("acme", plan=plan)
    make_flag("beta")
    _, secret = make_key(tenant)
    service = Client()

    def evaluated():
        return service.get("/api/v1/flags/beta", HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    assert evaluated()["enabled"] is False
    created = api.put("/tenants/acme/overrides/beta", {"enabled": True})
    assert created.status_code == 201 and created.json()["source"] == "admin"
    assert evaluated()["enabled"] is True and evaluated()["reason"] == "admin_override"
    problem(api.put("/tenants/acme/overrides/beta", {"enabled": False}), 428, "precondition_required")
    replaced = api.put("/tenants/acme/overrides/beta", {"enabled": False}, If_Match=created["ETag"])
    assert replaced.status_code == 200 and evaluated()["enabled"] is False
    assert [o["flag"] for o in api.get("/tenants/acme/overrides").json()["items"]] == ["beta"]
    assert api.get("/tenants/acme/overrides/beta").json()["enabled"] is False
    problem(api.delete("/tenants/acme/overrides/beta", If_Match=created["ETag"]), 412, "precondition_failed")
    assert api.delete("/tenants/acme/overrides/beta", If_Match=replaced["ETag"]).status_code == 204
    assert not TenantFlag.objects.exists() and evaluated()["reason"] == "default"
    actions = list(AuditEvent.objects.filter(action__contains="override").values_list("action", flat=True))
    assert sorted(actions) == ["flag.clear_override", "flag.set_override", "flag.set_override"]


def test_override_refusals(api, plan):
    make_tenant("acme", plan=plan)
    make_flag("beta")
    problem(api.put("/tenants/nope/overrides/beta", {"enabled": True}), 404, "not_found", "slug")
    problem(api.put("/tenants/acme/overrides/nope", {"enabled": True}), 404, "not_found", "key")
    problem(api.get("/tenants/acme/overrides/beta"), 404, "not_found", "key")
    problem(api.delete("/tenants/acme/overrides/beta", If_Match="*"), 404, "not_found", "key")
    bad = {"enabled": True, "rollout_percent": 101}
    problem(api.put("/tenants/acme/overrides/beta", bad), 422, "invalid_request", "rollout_percent")
    problem(api.put("/tenants/acme/overrides/beta", {}), 422, "invalid_request", "enabled")
