"""Admin API, flags as code: export the document, plan an import (nothing kept), apply it with If-Match."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tenants.models import Flag, TenantFlag
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_flag, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(plan):
    make_flag("beta")
    make_tenant("acme", plan=plan)


def wanted(api) -> dict:
    document = api.get("/flags-document").json()
    document["flags"]["gamma"] = {"description": "new", "default": True}
    document["tenants"]["acme"]["overrides"] = {"beta": {"enabled": True, "rollout_percent": 30}}
    return document


def test_export_is_the_flags_export_document_with_an_etag(api, estate):
    response = api.get("/flags-document")
    assert response.status_code == 200 and response["ETag"]
    document = response.json()
    assert document["version"] == 2 and set(document["flags"]) == {"beta"} and "acme" in document["tenants"]
    assert document["segments"] == {}
    assert api.get("/flags-document", If_None_Match=response["ETag"]).status_code == 304


def test_plan_shows_the_diff_and_keeps_nothing(api, estate):
    audits = AuditEvent.objects.count()
    response = api.post("/flags-document/plan", wanted(api))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["changes"] == 2 and body["applied"] is False
    assert any(line.startswith("+ flag gamma") for line in body["diff"])
    assert not Flag.objects.filter(key="gamma").exists() and not TenantFlag.objects.exists()
    assert AuditEvent.objects.count() == audits


def test_apply_needs_the_plans_etag_then_is_audited_and_idempotent(api, token, estate):
    document = wanted(api)
    etag = api.post("/flags-document/plan", document)["ETag"]
    problem(api.post("/flags-document/apply", document), 428, "precondition_required")
    applied = api.post("/flags-document/apply", document, If_Match=etag)
    assert applied.status_code == 200 and applied.json()["changes"] == 2 and applied.json()["applied"] is True
    assert Flag.objects.get(key="gamma").default is True and TenantFlag.objects.get().rollout_percent == 30
    event = AuditEvent.objects.get(action="flag.create", object_id=str(Flag.objects.get(key="gamma").pk))
    assert event.actor_user == token[0].user and f"[via staff token {token[0].prefix}]" in event.reason
    # The estate changed: the old ETag is stale, the answer's is current; a second apply changes nothing.
    problem(api.post("/flags-document/apply", document, If_Match=etag), 412, "precondition_failed")
    again = api.post("/flags-document/apply", document, If_Match=applied["ETag"])
    assert again.status_code == 200 and again.json() == {"changes": 0, "applied": False, "diff": []}


def test_an_invalid_document_names_the_path(api, estate):
    document = wanted(api)
    document["tenants"]["acme"]["overrides"]["beta"]["rollout_percent"] = 101
    body = problem(api.post("/flags-document/plan", document), 422, "invalid_document")
    assert body["field"] == "tenants.acme.overrides.beta.rollout_percent"
    problem(api.post("/flags-document/plan", {"version": 3}), 422, "invalid_document", "version")
    problem(api.post("/flags-document/apply", {"version": 1, "nope": {}}, If_Match="*"), 422, "invalid_document")


def test_apply_needs_every_write_scope(estate):
    user = make_operator("flagger")
    _, secret = make_token(user, scopes=["tenants:read", "flags:write"])
    flagger = AdminApi(secret)
    assert flagger.post("/flags-document/plan", wanted(flagger)).status_code == 200
    body = problem(flagger.post("/flags-document/apply", wanted(flagger), If_Match="*"), 403, "insufficient_scope")
    assert "plans:write" in body["detail"] and "tenants:write" in body["detail"]


def test_typed_flags_and_segments_plan_and_apply_with_paths_in_problems(api, estate):
    document = api.get("/flags-document").json()
    document["segments"]["eu"] = {"conditions": [{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}]}
    document["flags"]["model"] = {
        "kind": "string",
        "default_value": "m",
        "variants": [{"key": "big", "value": "b", "weight": 100}],
        "rules": [{"segment": "eu", "serve": {"variant": "big"}}],
    }
    document["tenants"]["acme"]["labels"] = ["eu"]
    document["tenants"]["acme"]["overrides"] = {"model": {"enabled": True, "value": "custom"}}
    body = api.post("/flags-document/plan", document).json()
    assert body["diff"][:2] == ["+ segment eu", "+ flag model"] and "+ override acme/model" in body["diff"]

    bad = {
        **document,
        "tenants": {"acme": {**document["tenants"]["acme"], "overrides": {"model": {"enabled": True, "value": 5}}}},
    }
    problem(api.post("/flags-document/plan", bad), 422, "invalid_document", "tenants.acme.overrides.model.value")
    document["flags"]["model"]["variants"][0]["weight"] = 50
    problem(api.post("/flags-document/plan", document), 422, "invalid_document", "flags.model.variants")
    assert not Flag.objects.filter(key="model").exists()


def test_a_version_1_document_still_applies(api, estate):
    document = {"version": 1, "flags": {"beta": {"default": True}}, "plans": {}, "tenants": {}}
    etag = api.post("/flags-document/plan", document)["ETag"]
    applied = api.post("/flags-document/apply", document, If_Match=etag)
    assert applied.status_code == 200 and applied.json()["diff"] == [
        '~ flag beta: description "beta flag" -> "", default false -> true'
    ]
    assert Flag.objects.get(key="beta").default is True


def test_segments_in_a_document_need_the_segment_permissions(estate):
    user = make_operator("flagger")
    _, secret = make_token(user)
    user.user_permissions.remove(*user.user_permissions.filter(codename="view_segment"))
    body = problem(AdminApi(secret).get("/flags-document"), 403, "permission_denied")
    assert "tenants.view_segment" in body["detail"]
