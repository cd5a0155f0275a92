"""Admin API, tenant lifecycle (activate, offboard) and owner toggles (list, reset), audited as the token's user."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from tenants.models import OwnerToggle, Tenant
from tenants.services.flags import flag_owner_toggle
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_flag, make_key, make_tenant

pytestmark = pytest.mark.django_db


def test_activate_turns_a_trial_into_an_active_tenant_with_if_match(api, token, plan):
    make_tenant("acme", plan=plan)
    etag = api.get("/tenants/acme")["ETag"]
    problem(api.post("/tenants/acme/activate"), 428, "precondition_required", "If-Match")
    activated = api.post("/tenants/acme/activate", If_Match=etag)
    assert activated.status_code == 200 and activated.json()["status"] == "active" and activated["ETag"] != etag
    event = AuditEvent.objects.get(action="tenant.activate")
    assert event.actor_user == token[0].user and f"[via staff token {token[0].prefix}]" in event.reason
    problem(api.post("/tenants/acme/activate", If_Match=etag), 412, "precondition_failed", "If-Match")
    # Only a trial can be activated: the service's refusal is a 422 naming the status.
    problem(api.post("/tenants/acme/activate", If_Match=activated["ETag"]), 422, "invalid_request", "status")
    problem(api.post("/tenants/nope/activate", If_Match=etag), 404, "not_found", "slug")


@pytest.mark.django_db(transaction=True)
def test_offboard_needs_a_reason_refuses_the_tenants_keys_and_happens_once(api, plan):
    tenant = make_tenant("acme", plan=plan, status="active")
    _, secret = make_key(tenant)
    service = Client()
    assert service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    etag = api.get("/tenants/acme")["ETag"]
    problem(api.post("/tenants/acme/offboard", {"reason": "contract ended"}), 428, "precondition_required")
    problem(api.post("/tenants/acme/offboard", {}, If_Match=etag), 422, "invalid_request", "reason")
    problem(api.post("/tenants/acme/offboard", {"reason": ""}, If_Match=etag), 422, "invalid_request", "reason")
    problem(api.post("/tenants/acme/offboard", {"reason": "   "}, If_Match=etag), 422, "invalid_request", "reason")
    gone = api.post("/tenants/acme/offboard", {"reason": "contract ended"}, If_Match=etag)
    assert gone.status_code == 200, gone.content
    assert gone.json()["status"] == "deleted" and gone.json()["status_reason"] == "contract ended"
    assert service.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code in (401, 403)
    assert "contract ended [via staff token" in AuditEvent.objects.get(action="tenant.offboard").reason
    again = api.post("/tenants/acme/offboard", {"reason": "again"}, If_Match=gone["ETag"])
    problem(again, 409, "tenant_deleted", "slug")
    problem(api.post("/tenants/acme/activate", If_Match=gone["ETag"]), 409, "tenant_deleted", "slug")
    assert Tenant.objects.get(slug="acme").status == "deleted"
    problem(api.post("/tenants/nope/offboard", {"reason": "x"}, If_Match=etag), 404, "not_found", "slug")


def _toggled(plan):
    owner = get_user_model().objects.create_user("acme-owner", password="pw-123456789")
    tenant = make_tenant("acme", plan=plan, owner=owner)
    beta, dark = make_flag("beta", tenant_editable=True), make_flag("dark", tenant_editable=True)
    flag_owner_toggle(tenant=tenant, flag=beta, enabled=True, actor=owner)
    flag_owner_toggle(tenant=tenant, flag=dark, enabled=False, actor=owner)
    return tenant


def test_owner_toggles_list_in_pages(api, plan):
    _toggled(plan)
    make_tenant("empty", plan=plan)
    first = api.get("/tenants/acme/owner-toggles?limit=1")
    assert first.status_code == 200 and first["ETag"]
    body = first.json()
    assert body["items"] == [{**body["items"][0], "tenant": "acme", "flag": "beta", "enabled": True}]
    assert body["items"][0]["updated_by"] == "acme-owner" and body["next_cursor"]
    second = api.get(f"/tenants/acme/owner-toggles?limit=1&cursor={body['next_cursor']}").json()
    assert [(t["flag"], t["enabled"]) for t in second["items"]] == [("dark", False)] and second["next_cursor"] is None
    assert api.get("/tenants/empty/owner-toggles").json() == {"items": [], "next_cursor": None}
    problem(api.get("/tenants/nope/owner-toggles"), 404, "not_found", "slug")
    problem(api.get("/tenants/acme/owner-toggles?cursor=forged"), 400, "invalid_cursor", "cursor")


def test_reset_removes_the_owners_choice_with_if_match_and_is_audited(api, token, plan):
    tenant = _toggled(plan)
    got = api.get("/tenants/acme/owner-toggles/dark")
    assert got.status_code == 200 and got.json()["enabled"] is False and got.json()["updated_by"] == "acme-owner"
    etag = got["ETag"]
    assert api.get("/tenants/acme/owner-toggles/dark", If_None_Match=etag).status_code == 304
    problem(api.delete("/tenants/acme/owner-toggles/dark"), 428, "precondition_required", "If-Match")
    problem(api.delete("/tenants/acme/owner-toggles/dark", If_Match='"stale"'), 412, "precondition_failed")
    assert api.delete("/tenants/acme/owner-toggles/dark", If_Match=etag).status_code == 204
    assert list(OwnerToggle.objects.filter(tenant=tenant).values_list("flag__key", flat=True)) == ["beta"]
    event = AuditEvent.objects.get(action="flag.owner_reset")
    assert event.actor_user == token[0].user and event.object_id == "dark" and event.tenant == tenant
    assert f"[via staff token {token[0].prefix}]" in event.reason
    problem(api.get("/tenants/acme/owner-toggles/dark"), 404, "not_found", "flag_key")
    problem(api.delete("/tenants/acme/owner-toggles/dark", If_Match="*"), 404, "not_found", "flag_key")
    problem(api.delete("/tenants/acme/owner-toggles/nope", If_Match="*"), 404, "not_found", "flag_key")
    problem(api.delete("/tenants/nope/owner-toggles/beta", If_Match="*"), 404, "not_found", "slug")


def test_lifecycle_and_toggles_need_their_scope_and_the_users_permission(api, plan):
    _toggled(plan)
    reader = AdminApi(make_token(make_operator("reader", scopes=("tenants:read",)), scopes=("tenants:read",))[1])
    assert reader.get("/tenants/acme/owner-toggles").status_code == 200
    problem(reader.post("/tenants/acme/activate", If_Match="*"), 403, "insufficient_scope")
    problem(reader.post("/tenants/acme/offboard", {"reason": "x"}, If_Match="*"), 403, "insufficient_scope")
    problem(reader.delete("/tenants/acme/owner-toggles/beta", If_Match="*"), 403, "insufficient_scope")
    writer = make_operator("writer", scopes=("tenants:read", "tenants:write"))
    writer_api = AdminApi(make_token(writer, scopes=("tenants:read", "tenants:write"))[1])
    writer.user_permissions.remove(*writer.user_permissions.filter(codename__in=["change_tenant", "view_flag"]))
    problem(writer_api.post("/tenants/acme/activate", If_Match="*"), 403, "permission_denied")
    problem(writer_api.delete("/tenants/acme/owner-toggles/beta", If_Match="*"), 403, "permission_denied")
    problem(writer_api.get("/tenants/acme/owner-toggles"), 403, "permission_denied")
    problem(AdminApi("").get("/tenants/acme/owner-toggles"), 401, "missing_token")
    problem(AdminApi("").post("/tenants/acme/activate"), 401, "missing_token")
    assert Tenant.objects.get(slug="acme").status == "trial" and OwnerToggle.objects.count() == 2
