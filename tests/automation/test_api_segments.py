"""Admin API, segments: list, get, create, update and delete, with the conventions of every resource."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Segment
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_key, make_tenant

pytestmark = pytest.mark.django_db

EU = [{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}]
BETA_USERS = [{"attribute": "context.plan", "op": "in", "values": ["beta"]}]


def test_segments_list_get_create_update(api, token):
    created = api.post("/segments", {"key": "eu", "name": "EU tenants", "conditions": EU})
    assert created.status_code == 201, created.content
    assert created["Location"].endswith("/segments/eu")
    body = created.json()
    assert (body["key"], body["name"], body["description"], body["conditions"]) == ("eu", "EU tenants", "", EU)
    api.post("/segments", {"key": "beta-users", "conditions": BETA_USERS})
    listed = api.get("/segments?limit=1").json()
    assert [s["key"] for s in listed["items"]] == ["beta-users"] and listed["next_cursor"]
    assert [s["key"] for s in api.get(f"/segments?cursor={listed['next_cursor']}").json()["items"]] == ["eu"]
    got = api.get("/segments/eu")
    assert got.json() == body and api.get("/segments/eu", If_None_Match=got["ETag"]).status_code == 304

    updated = api.patch("/segments/eu", {"description": "GDPR", "conditions": BETA_USERS}, If_Match=got["ETag"])
    assert updated.status_code == 200 and updated.json()["conditions"] == BETA_USERS
    assert Segment.objects.get(key="eu").description == "GDPR"
    event = AuditEvent.objects.get(action="segment.update")
    assert event.actor_user == token[0].user and f"[via staff token {token[0].prefix}]" in event.reason


def test_segment_create_replays_with_idempotency_key(api):
    first = api.post("/segments", {"key": "eu", "conditions": EU}, Idempotency_Key="s-1")
    again = api.post("/segments", {"key": "eu", "conditions": EU}, Idempotency_Key="s-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again["Idempotency-Replayed"] == "true" and Segment.objects.count() == 1


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        ([{"attribute": "tenant.colour", "op": "in", "values": ["red"]}], "conditions[0].attribute"),
        ([{"attribute": "subject", "op": "like", "values": ["x"]}], "conditions[0].op"),
        ([{"attribute": "subject", "op": "in", "values": []}], "conditions[0].values"),
        ([EU[0], {"attribute": "context.version", "op": "semver_gt", "values": ["one"]}], "conditions[1].values"),
        ([{"attribute": "subject", "op": "regex", "values": ["(a+)+"]}], "conditions[0].values"),
        ([{"attribute": "subject", "op": "in"}], "conditions[0].values"),
    ],
)
def test_a_bad_condition_is_a_problem_naming_its_path(api, conditions, field):
    problem(api.post("/segments", {"key": "bad", "conditions": conditions}), 422, "invalid_request", field)
    assert not Segment.objects.exists()


def test_segment_refusals(api):
    api.post("/segments", {"key": "eu", "conditions": EU})
    problem(api.post("/segments", {"key": "eu"}), 409, "conflict", "key")
    problem(api.post("/segments", {"key": "Not Valid"}), 422, "invalid_request", "key")
    problem(api.get("/segments/nope"), 404, "not_found", "key")
    etag = api.get("/segments/eu")["ETag"]
    problem(api.patch("/segments/eu", {"name": "x"}), 428, "precondition_required")
    problem(api.patch("/segments/eu", {"name": "x"}, If_Match='"stale"'), 412, "precondition_failed")
    problem(api.patch("/segments/eu", {}, If_Match=etag), 422, "empty_update")
    problem(api.patch("/segments/eu", {"conditions": None}, If_Match=etag), 422, "invalid_request", "conditions")
    bad = [{"attribute": "subject", "op": "lt", "values": ["x"]}]
    problem(
        api.patch("/segments/eu", {"conditions": bad}, If_Match=etag), 422, "invalid_request", "conditions[0].values"
    )
    problem(api.delete("/segments/eu"), 428, "precondition_required")
    assert Segment.objects.get(key="eu").conditions == EU


def test_delete_is_refused_while_a_flag_rule_uses_the_segment(api):
    api.post("/segments", {"key": "eu", "conditions": EU})
    rule = {"segment": "eu", "serve": {"variant": "on"}}
    variants = [{"key": "on", "value": "yes"}]
    for key in ("editor", "theme"):
        assert (
            api.post(
                "/flags", {"key": key, "kind": "string", "default_value": "no", "variants": variants, "rules": [rule]}
            ).status_code
            == 201
        )
    etag = api.get("/segments/eu")["ETag"]
    body = problem(api.delete("/segments/eu", If_Match=etag), 409, "segment_in_use", "key")
    assert body["flags"] == ["editor", "theme"] and "editor, theme" in body["detail"]
    for key in ("editor", "theme"):
        api.patch(f"/flags/{key}", {"rules": []}, If_Match=api.get(f"/flags/{key}")["ETag"])
    assert api.delete("/segments/eu", If_Match=etag).status_code == 204
    assert not Segment.objects.exists() and AuditEvent.objects.filter(action="segment.delete").count() == 1
    problem(api.delete("/segments/eu", If_Match="*"), 404, "not_found", "key")


@pytest.mark.django_db(transaction=True)
def test_a_segment_change_changes_the_service_api_answer(api, plan):
    tenant = make_tenant("acme", plan=plan, labels=["eu"])
    _, secret = make_key(tenant)
    created = api.post("/segments", {"key": "eu", "conditions": EU})
    variants = [{"key": "on", "value": "yes"}]
    api.post(
        "/flags",
        {
            "key": "editor",
            "kind": "string",
            "default_value": "no",
            "variants": variants,
            "rules": [{"segment": "eu", "serve": {"variant": "on"}}],
        },
    )

    def evaluated():
        return Client().get("/api/v1/flags/editor", HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    assert (evaluated()["value"], evaluated()["reason"]) == ("yes", "rule")
    api.patch(
        "/segments/eu",
        {"conditions": [{"attribute": "tenant.labels", "op": "in", "values": ["us"]}]},
        If_Match=created["ETag"],
    )
    assert evaluated()["reason"] == "default"


def test_segments_need_their_scopes_and_their_users_permissions(api):
    api.post("/segments", {"key": "eu", "conditions": EU})
    reader = AdminApi(make_token(make_operator("reader", scopes=["tenants:read"]), scopes=["tenants:read"])[1])
    assert reader.get("/segments/eu").status_code == 200
    problem(reader.post("/segments", {"key": "us"}), 403, "insufficient_scope")
    problem(reader.patch("/segments/eu", {"name": "x"}, If_Match="*"), 403, "insufficient_scope")
    problem(reader.delete("/segments/eu", If_Match="*"), 403, "insufficient_scope")

    # A token never does more than its user may now: a permission taken away refuses the next request.
    writer = make_operator("writer")
    writer_api = AdminApi(make_token(writer)[1])
    writer.user_permissions.remove(*writer.user_permissions.filter(codename="delete_segment"))
    body = problem(writer_api.delete("/segments/eu", If_Match="*"), 403, "permission_denied")
    assert "tenants.delete_segment" in body["detail"]
    assert Segment.objects.filter(key="eu").exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/segments", {"key": "a", "name": "x\u0000y"}, "name"),
        (
            "/segments",
            {"key": "a", "conditions": [EU[0], {"attribute": "subject", "op": "in", "values": ["ok", "\u0000"]}]},
            "conditions[1].values[1]",
        ),
        ("/flags", {"key": "a", "kind": "string", "default_value": "x\u0000"}, "default_value"),
        ("/flags", {"key": "a", "kind": "json", "default_value": {"n\u0000": 1}}, "default_value.n\u0000"),
        ("/plans", {"code": "a", "name": "x\u0000"}, "name"),
    ],
)
def test_a_nul_character_postgresql_refuses_is_a_problem_naming_the_member(api, path, body, field):
    problem(api.post(path, body), 422, "invalid_request", field)
    assert not Segment.objects.exists()
