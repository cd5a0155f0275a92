"""Admin API, plans, flags and overrides: success and every refusal, as problems."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Flag, Plan, TenantFlag
from tenants.services.flags import flag_owner_toggle, flag_set_override, segment_create
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant, make_user

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


# ------------------------------------------------------------------------- typed flags
PLANS = [{"key": "free", "value": "basic", "weight": 50}, {"key": "paid", "value": "pro", "weight": 50}]


def test_a_typed_flag_is_created_read_and_updated_with_every_field(api):
    segment_create(key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None)
    created = api.post(
        "/flags",
        {
            "key": "editor",
            "kind": "string",
            "default_value": "classic",
            "variants": PLANS,
            "rules": [{"segment": "eu", "percent": 40, "serve": {"variant": "paid"}}],
            "requires_approval": True,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["kind"] == "string" and body["default_value"] == "classic" and body["requires_approval"] is True
    assert body["variants"] == PLANS and body["schema"] is None
    assert body["rules"] == [
        {"segment": "eu", "percent": 40, "bucket_by": "subject", "serve": {"enabled": True, "variant": "paid"}}
    ]
    assert api.get("/flags/editor").json() == body

    etag = created["ETag"]
    updated = api.patch("/flags/editor", {"default_value": "modern", "rules": None, "kind": "string"}, If_Match=etag)
    assert updated.status_code == 200, updated.content
    assert updated.json()["default_value"] == "modern" and updated.json()["rules"] == []
    flag = Flag.objects.get(key="editor")
    assert flag.default_value == "modern" and flag.rules == []


def test_a_json_flag_keeps_its_schema_and_every_value_must_match_it(api):
    schema = {"type": "object", "properties": {"limit": {"type": "integer"}}, "required": ["limit"]}
    created = api.post("/flags", {"key": "quota", "kind": "json", "default_value": {"limit": 5}, "schema": schema})
    assert created.status_code == 201 and created.json()["schema"] == schema
    bad = api.patch("/flags/quota", {"default_value": {"limit": "many"}}, If_Match=created["ETag"])
    assert "JSON Schema" in problem(bad, 422, "invalid_request", "default_value")["detail"]
    problem(
        api.post("/flags", {"key": "q2", "kind": "json", "default_value": {}, "schema": {"type": "nope"}}),
        422,
        "invalid_request",
        "schema",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "string"}, "default_value"),
        ({"kind": "number", "default_value": "3"}, "default_value"),
        ({"kind": "colour", "default_value": "red"}, "kind"),
        ({"kind": "string", "default_value": "a", "variants": [{"key": "x", "value": "b", "weight": 60}]}, "variants"),
        ({"kind": "string", "default_value": "a", "variants": [{"key": "x", "value": 1}]}, "variants[0].value"),
        ({"kind": "string", "default_value": "a", "variants": [{"key": "x", "value": "b", "weight": 101}]}, None),
        ({"kind": "string", "default_value": "a", "variants": [{"key": "X Y", "value": "b"}]}, "variants[0].key"),
        ({"variants": [{"key": "x", "value": True}]}, "variants"),
        ({"kind": "string", "default_value": "a", "rules": [{"segment": "nope", "serve": {}}]}, "rules[0].segment"),
        (
            {"kind": "string", "default_value": "a", "rules": [{"serve": {"variant": "nope"}}]},
            "rules[0].serve.variant",
        ),
        ({"kind": "string", "default_value": "a", "rules": [{"percent": 150, "serve": {}}]}, "rules[0].percent"),
        ({"kind": "string", "default_value": "a", "rules": [{"percent": 50}]}, "rules[0].serve"),
    ],
)
def test_a_bad_flag_definition_is_a_problem_naming_the_field(api, body, field):
    response = api.post("/flags", {"key": "typed", **body})
    expected = field or "variants[0].weight"
    problem(response, 422, "invalid_request", expected)
    assert not Flag.objects.filter(key="typed").exists()


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/definitions/nope"},
        # Never fetched: a staff user's schema must not make the server call out (or hang on a dead address).
        {"$ref": "http://127.0.0.1:9/schema.json"},
    ],
)
def test_a_json_schema_whose_references_do_not_resolve_is_refused_naming_schema(api, schema):
    body = {"key": "quota", "kind": "json", "default_value": {"limit": 5}, "schema": schema}
    problem(api.post("/flags", body), 422, "invalid_request", "schema")
    assert not Flag.objects.filter(key="quota").exists()


def test_a_flags_kind_is_permanent(api):
    created = api.post("/flags", {"key": "beta"})
    response = api.patch("/flags/beta", {"kind": "string", "default_value": "on"}, If_Match=created["ETag"])
    assert "permanent" in problem(response, 409, "immutable", "kind")["detail"]
    assert Flag.objects.get(key="beta").kind == "boolean"
    same = api.patch("/flags/beta", {"kind": "boolean"}, If_Match=created["ETag"])
    assert same.status_code == 200 and same["ETag"] == created["ETag"]
    problem(api.patch("/flags/beta", {"risky": None}, If_Match=created["ETag"]), 422, "invalid_request", "risky")


def test_a_variant_an_override_serves_cannot_be_removed(api, plan):
    make_tenant("acme", plan=plan)
    created = api.post("/flags", {"key": "editor", "kind": "string", "default_value": "a", "variants": PLANS})
    assert api.put("/tenants/acme/overrides/editor", {"enabled": True, "variant": "paid"}).status_code == 201
    only_free = [{**PLANS[0], "weight": 0}]
    response = api.patch("/flags/editor", {"variants": only_free}, If_Match=created["ETag"])
    assert "tenant acme" in problem(response, 422, "invalid_request", "variant")["detail"]


# ------------------------------------------------------------------ typed overrides
@pytest.mark.django_db(transaction=True)
def test_an_override_serves_a_variant_or_a_value_and_bounds_the_owner(api, plan):
    tenant = make_tenant("acme", plan=plan)
    api.post("/flags", {"key": "editor", "kind": "string", "default_value": "classic", "variants": PLANS})
    _, secret = make_key(tenant)

    def evaluated():
        return Client().get("/api/v1/flags/editor?subject=u1", HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    created = api.put(
        "/tenants/acme/overrides/editor", {"enabled": True, "variant": "paid", "owner_variants": ["free", "paid"]}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["variant"], body["value"], body["owner_variants"]) == ("paid", None, ["free", "paid"])
    answer = evaluated()
    assert (answer["enabled"], answer["variant"], answer["value"], answer["reason"]) == (
        True,
        "paid",
        "pro",
        "admin_override",
    )
    replaced = api.put("/tenants/acme/overrides/editor", {"enabled": True, "value": "custom"}, If_Match=created["ETag"])
    assert replaced.status_code == 200 and replaced.json()["variant"] is None and replaced.json()["value"] == "custom"
    assert evaluated()["value"] == "custom"
    assert api.get("/tenants/acme/overrides").json()["items"][0]["value"] == "custom"
    after = AuditEvent.objects.filter(action="flag.set_override").latest("id").after
    assert after["value"] == "custom" and "variant" not in after


@pytest.mark.parametrize(
    ("flag", "body", "field"),
    [
        ("editor", {"enabled": True, "variant": "nope"}, "variant"),
        ("editor", {"enabled": True, "value": 5}, "value"),
        ("editor", {"enabled": True, "variant": "paid", "value": "x"}, "value"),
        ("editor", {"enabled": True, "owner_variants": ["free", "gold"]}, "owner_variants"),
        ("beta", {"enabled": True, "variant": "paid"}, "variant"),
        ("beta", {"enabled": True, "value": True}, "variant"),
    ],
)
def test_an_override_that_does_not_fit_the_flag_names_the_field(api, plan, flag, body, field):
    make_tenant("acme", plan=plan)
    make_flag("beta")
    make_flag("editor", kind="string", default_value="classic", variants=PLANS)
    problem(api.put(f"/tenants/acme/overrides/{flag}", body), 422, "invalid_request", field)
    assert not TenantFlag.objects.exists()


def test_owner_toggles_show_the_owners_variant(api, plan):
    owner = make_user("acme-owner")
    tenant = make_tenant("acme", plan=plan, owner=owner)
    flag = make_flag("editor", kind="string", default_value="classic", variants=PLANS, tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, owner_variants=["free", "paid"], actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, variant="free", actor=owner)
    assert api.get("/tenants/acme/owner-toggles/editor").json()["variant"] == "free"
    assert [t["variant"] for t in api.get("/tenants/acme/owner-toggles").json()["items"]] == ["free"]


# ------------------------------------------------------------------ who may define them
def test_a_read_only_token_cannot_define_flags_or_set_typed_overrides(plan):
    make_tenant("acme", plan=plan)
    make_flag("editor", kind="string", default_value="classic", variants=PLANS)
    _, secret = make_token(make_operator("reader", scopes=["tenants:read"]), scopes=["tenants:read"])
    reader = AdminApi(secret)
    assert reader.get("/flags/editor").json()["variants"] == PLANS
    problem(reader.post("/flags", {"key": "x", "kind": "string", "default_value": "a"}), 403, "insufficient_scope")
    problem(
        reader.put("/tenants/acme/overrides/editor", {"enabled": True, "variant": "paid"}), 403, "insufficient_scope"
    )
    assert not Flag.objects.filter(key="x").exists() and not TenantFlag.objects.exists()
