"""Fixtures of the admin-API tests: an operator holding every scope, their token, a client speaking to the API."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_plan

# Every operation of the admin API, by operationId.
ADMIN_OPERATIONS = (
    "tenants_list",
    "tenant_get",
    "tenant_create",
    "tenant_update",
    "tenant_suspend",
    "tenant_resume",
    "tenant_activate",
    "tenant_offboard",
    "owner_toggles_list",
    "owner_toggle_get",
    "owner_toggle_reset",
    "plans_list",
    "plan_get",
    "plan_create",
    "plan_update",
    "flags_list",
    "flag_get",
    "flag_create",
    "flag_update",
    "segments_list",
    "segment_get",
    "segment_create",
    "segment_update",
    "segment_delete",
    "overrides_list",
    "override_get",
    "override_put",
    "override_delete",
    "apikeys_list",
    "apikey_get",
    "apikey_issue",
    "apikey_revoke",
    "audit_events_list",
    "flags_document_get",
    "flags_document_plan",
    "flags_document_apply",
    "ratelimits_list",
    "ratelimit_reset",
    "breakers_list",
    "breaker_get",
    "breaker_force_open",
    "breaker_force_close",
    "breaker_reset",
    "members_list",
    "member_add",
    "member_update",
    "member_remove",
    "usage_get",
    "invitations_list",
    "invitation_create",
    "invitation_revoke",
    "webhook_endpoints_list",
    "webhook_endpoint_get",
    "webhook_endpoint_create",
    "webhook_endpoint_update",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_delete",
    "webhook_deliveries_list",
    "webhook_delivery_redeliver",
    "environments_list",
    "environment_get",
    "environment_create",
    "environment_delete",
    "environment_diff",
    "environment_promote",
    "changes_list",
    "change_get",
    "change_create",
    "change_approve",
    "change_reject",
    "change_cancel",
)


class AdminApi:
    """A test client for /api/v1/admin/ sending one bearer token."""

    def __init__(self, secret: str):
        self.client = Client()
        self.secret = secret

    def call(self, method: str, path: str, body=None, *, secret=None, raw: str | None = None, **headers):
        headers = {name.replace("_", "-"): value for name, value in headers.items()}
        if secret if secret is not None else self.secret:
            headers["Authorization"] = f"Bearer {secret if secret is not None else self.secret}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json", "data": data} if data is not None else {}
        return getattr(self.client, method.lower())(f"/api/v1/admin{path}", headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def problem(response, status: int, error: str, field: str | None = None) -> dict:
    """Assert `response` is an RFC 9457 problem with this status and code; return its body."""
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["error"] == error and body["detail"] and body["title"]
    assert body["type"].endswith(f"/{error}")
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture
def operator(db):
    return make_operator("robot")


@pytest.fixture
def token(operator):
    return make_token(operator)


@pytest.fixture
def api(token):
    return AdminApi(token[1])


@pytest.fixture
def plan(db):
    return make_plan("standard")


@pytest.fixture(autouse=True)
def _roomy_rate_limit(settings):
    """A budget no test reaches by accident; the rate-limit tests set their own with override_settings."""
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 100_000
    settings.RESILIENCE_RATE_LIMIT_BURST = 10_000
