"""Admin API, tenant API keys (secret shown once) and the audit trail (filters, cursor pages)."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import ApiKey
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_key, make_tenant

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_issue_shows_the_secret_once_and_revoke_refuses_it_on_the_next_request(api, plan):
    make_tenant("acme", plan=plan)
    issued = api.post("/tenants/acme/api-keys", {"name": "replica", "scopes": ["config:read"]})
    assert issued.status_code == 201 and issued["Cache-Control"] == "no-store"
    body = issued.json()
    secret = body["secret"]
    assert secret.startswith(f"aak_{body['prefix']}_") and body["scopes"] == ["config:read"]
    service = Client()
    assert service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    got = api.get(f"/tenants/acme/api-keys/{body['prefix']}")
    # last_used_at moved (the request above); the ETag did not: telemetry is no part of the version.
    assert "secret" not in got.json() and got.json()["last_used_at"] and got["ETag"] == issued["ETag"]
    listed = api.get("/tenants/acme/api-keys").json()["items"]
    assert [(k["prefix"], k["last_used_at"]) for k in listed] == [(body["prefix"], got.json()["last_used_at"])]
    problem(api.post(f"/tenants/acme/api-keys/{body['prefix']}/revoke"), 428, "precondition_required")
    revoked = api.post(f"/tenants/acme/api-keys/{body['prefix']}/revoke", If_Match=got["ETag"])
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 401 and refused.json()["error"] == "revoked_api_key"


def test_an_idempotent_replay_of_a_key_issue_never_holds_the_secret(api, plan, redis_client):
    make_tenant("acme", plan=plan)
    first = api.post("/tenants/acme/api-keys", {"name": "replica"}, Idempotency_Key="key-1")
    again = api.post("/tenants/acme/api-keys", {"name": "replica"}, Idempotency_Key="key-1")
    assert first.json()["secret"] and again.json()["secret"] is None
    assert again.json()["prefix"] == first.json()["prefix"] and ApiKey.objects.count() == 1
    strings = [k for k in redis_client.scan_iter("agentapi:*") if redis_client.type(k) == "string"]
    assert strings and all(first.json()["secret"] not in (redis_client.get(k) or "") for k in strings)


def test_key_refusals(api, plan):
    tenant = make_tenant("acme", plan=plan)
    other = make_tenant("globex", plan=plan)
    foreign, _ = make_key(other)
    problem(api.post("/tenants/nope/api-keys", {"name": "x"}), 404, "not_found", "slug")
    problem(api.post("/tenants/acme/api-keys", {"name": "x", "scopes": ["root"]}), 422, "invalid_request", "scopes")
    problem(api.post("/tenants/acme/api-keys", {"name": ""}), 422, "invalid_request", "name")
    past = {"name": "x", "expires_at": "2001-01-01T00:00:00Z"}
    problem(api.post("/tenants/acme/api-keys", past), 422, "invalid_request", "expires_at")
    # A key of another tenant is not found under this one.
    problem(api.get(f"/tenants/acme/api-keys/{foreign.prefix}"), 404, "not_found", "prefix")
    problem(api.post(f"/tenants/acme/api-keys/{foreign.prefix}/revoke", If_Match="*"), 404, "not_found", "prefix")
    assert tenant.api_keys.count() == 0


def test_audit_events_filter_and_page(api, token, plan):
    make_tenant("acme", plan=plan)
    make_tenant("globex", plan=plan)
    for slug in ("acme", "globex"):
        etag = api.get(f"/tenants/{slug}")["ETag"]
        api.post(f"/tenants/{slug}/suspend", {"reason": "unpaid"}, If_Match=etag)
    suspends = api.get("/audit-events?action=tenant.suspend&limit=1").json()
    assert [e["tenant"] for e in suspends["items"]] == ["globex"] and suspends["next_cursor"]
    rest = api.get(f"/audit-events?action=tenant.suspend&limit=1&cursor={suspends['next_cursor']}").json()
    assert [e["tenant"] for e in rest["items"]] == ["acme"] and rest["next_cursor"] is None
    event = rest["items"][0]
    assert event["actor"] == "robot" and event["reason"].startswith("unpaid [via staff token sat_")
    assert event["before"]["status"] == "trial" and event["after"]["status"] == "suspended"
    assert {e["action"] for e in api.get("/audit-events?tenant=acme").json()["items"]} == {
        "tenant.create",
        "tenant.suspend",
    }
    assert api.get("/audit-events?actor=robot").json()["items"]
    assert api.get("/audit-events?since=2999-01-01T00:00:00Z").json()["items"] == []
    problem(api.get("/audit-events?since=yesterday"), 400, "invalid_request", "since")
    problem(api.get("/audit-events?cursor=%%%"), 400, "invalid_cursor", "cursor")
    for forged in ('{"after": "x"}', '{"after": 1e400}', '{"after": 99999999999999999999999}', '{"after": true}'):
        cursor = base64.urlsafe_b64encode(forged.encode()).decode()
        problem(api.get(f"/audit-events?cursor={cursor}"), 400, "invalid_cursor", "cursor")
    nul = base64.urlsafe_b64encode(b'{"after": "a\\u0000"}').decode()
    problem(api.get(f"/tenants?cursor={nul}"), 400, "invalid_cursor", "cursor")
    assert AuditEvent.objects.count() >= 4


def test_audit_needs_its_own_scope_and_permission(plan):
    user = make_operator("auditor", scopes=["audit:read"])
    _, secret = make_token(user, scopes=["audit:read"])
    assert AdminApi(secret).get("/audit-events").status_code == 200
    problem(AdminApi(secret).get("/tenants"), 403, "insufficient_scope")
