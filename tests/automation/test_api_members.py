"""Admin API, memberships (list, add, change role, remove; a tenant keeps an owner) and daily usage."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tenants.models import Membership
from tests.automation.conftest import problem
from tests.tenants.factories import make_key, make_tenant, make_user

pytestmark = pytest.mark.django_db


def test_members_are_added_changed_and_removed(api, plan):
    owner = make_user("olivia")
    make_user("bob")
    make_tenant("acme", plan=plan, owner=owner)
    added = api.post("/tenants/acme/members", {"username": "bob"})
    assert added.status_code == 201 and added.json()["role"] == "member"
    listed = api.get("/tenants/acme/members").json()["items"]
    assert [(m["username"], m["role"]) for m in listed] == [("bob", "member"), ("olivia", "owner")]
    problem(api.patch("/tenants/acme/members/bob", {"role": "admin"}), 428, "precondition_required")
    changed = api.patch("/tenants/acme/members/bob", {"role": "admin"}, If_Match=added["ETag"])
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    problem(api.delete("/tenants/acme/members/bob", If_Match=added["ETag"]), 412, "precondition_failed")
    assert api.delete("/tenants/acme/members/bob", If_Match=changed["ETag"]).status_code == 204
    assert list(Membership.objects.values_list("user__username", flat=True)) == ["olivia"]
    actions = sorted(AuditEvent.objects.filter(action__startswith="membership.").values_list("action", flat=True))
    assert actions == ["membership.add", "membership.add", "membership.change_role", "membership.remove"]


def test_member_refusals(api, plan):
    owner = make_user("olivia")
    make_tenant("acme", plan=plan, owner=owner)
    problem(api.post("/tenants/acme/members", {"username": "ghost"}), 422, "unknown_user", "username")
    problem(api.post("/tenants/acme/members", {"username": "olivia"}), 409, "conflict", "username")
    problem(api.post("/tenants/acme/members", {"username": "olivia", "role": "king"}), 422, "invalid_request", "role")
    problem(api.patch("/tenants/acme/members/ghost", {"role": "admin"}, If_Match="*"), 404, "not_found", "username")
    etag = api.get("/tenants/acme/members")  # a list's ETag is not a member's
    assert etag.status_code == 200
    problem(api.patch("/tenants/acme/members/olivia", {"role": "member"}, If_Match="*"), 409, "last_owner", "role")
    problem(api.delete("/tenants/acme/members/olivia", If_Match="*"), 409, "last_owner", "role")
    assert Membership.objects.get().role == "owner"


def test_usage_counts_the_days_service_requests(api, plan, client):
    tenant = make_tenant("acme", plan=plan)
    _, secret = make_key(tenant)
    for _ in range(3):
        client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get("/tenants/acme/usage?days=7")
    assert response.status_code == 200 and response["ETag"]
    days = response.json()["days"]
    assert len(days) == 7 and days[-1]["requests"] == 3 and days[0]["requests"] == 0
    problem(api.get("/tenants/acme/usage?days=0"), 400, "invalid_request", "days")
    problem(api.get("/tenants/nope/usage"), 404, "not_found", "slug")
