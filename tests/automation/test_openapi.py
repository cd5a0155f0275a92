"""Both OpenAPI documents: named operations, servers, every header and every problem body described."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.automation.conftest import ADMIN_OPERATIONS

pytestmark = pytest.mark.django_db

WRITES_WITH_IF_MATCH = {
    "tenant_update",
    "tenant_suspend",
    "tenant_resume",
    "tenant_activate",
    "tenant_offboard",
    "owner_toggle_reset",
    "plan_update",
    "flag_update",
    "segment_update",
    "segment_delete",
    "override_put",
    "override_delete",
    "apikey_revoke",
    "flags_document_apply",
    "member_update",
    "member_remove",
    "invitation_revoke",
    "webhook_endpoint_update",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_delete",
    "change_approve",
    "change_reject",
    "change_cancel",
    "environment_delete",
}
CREATES = {
    "tenant_create",
    "plan_create",
    "flag_create",
    "segment_create",
    "apikey_issue",
    "member_add",
    "invitation_create",
    "webhook_endpoint_create",
    "change_create",
    "environment_create",
}


def document(path: str) -> dict:
    response = Client().get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    return response.json()


def operations(doc: dict) -> dict:
    return {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}


def test_admin_document_names_every_operation_and_sets_servers():
    doc = document("/api/v1/admin/openapi.json")
    assert doc["servers"] and doc["servers"][0]["url"]
    ops = operations(doc)
    assert len(ops) == sum(len(item) for item in doc["paths"].values())  # unique ids
    assert set(ADMIN_OPERATIONS) == set(ops)
    assert all("_api_" not in name for name in ops)


def _headers(response: dict) -> set:
    return set(response.get("headers", {}))


def test_admin_document_describes_every_header_and_problem_body():
    doc = document("/api/v1/admin/openapi.json")
    assert set(doc["components"]["schemas"]["Problem"]["required"]) >= {"type", "title", "status", "detail", "error"}
    for name, op in operations(doc).items():
        responses = op["responses"]
        assert op["security"] == [{"StaffTokenAuth": []}], name
        for status in ("401", "403", "429"):
            assert status in responses, (name, status)
        assert "WWW-Authenticate" in _headers(responses["401"])
        assert {"Retry-After", "RateLimit-Limit"} <= _headers(responses["429"])
        for status, response in responses.items():
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= _headers(response), (name, status)
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (name, status)
                assert response["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
            elif status != "204":
                assert "ETag" in _headers(response), (name, status)
        params = {p["name"] for p in op.get("parameters", [])}
        if name in WRITES_WITH_IF_MATCH:
            assert "If-Match" in params and {"412", "428"} <= set(responses), name
        if name in CREATES:
            assert "Idempotency-Key" in params and {"409", "422"} <= set(responses), name


def test_service_document_keeps_its_operations_and_describes_problems_and_headers():
    doc = document("/api/v1/openapi.json")
    assert doc["servers"]
    ops = operations(doc)
    assert set(ops) == {"bootstrap", "flag_evaluate", "evaluate"}
    bootstrap = ops["bootstrap"]["responses"]
    assert "ETag" in _headers(bootstrap["200"]) and "ETag" in _headers(bootstrap["304"])
    assert "ETag" not in _headers(ops["flag_evaluate"]["responses"]["200"])
    for op in ops.values():
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"]
        assert "WWW-Authenticate" in _headers(op["responses"]["401"])
        assert "Retry-After" in _headers(op["responses"]["429"])
