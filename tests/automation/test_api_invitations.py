"""Admin API, invitations: list, invite (the link shown once, never replayed), revoke with If-Match."""

from __future__ import annotations

import pytest

from tenants.exceptions import InvitationInvalid
from tenants.models import Invitation
from tenants.services.invitations import invitation_for
from tests.automation.conftest import problem
from tests.tenants.factories import make_tenant, make_user

pytestmark = pytest.mark.django_db


def test_invite_shows_the_link_once_and_revoke_stops_it(api, plan):
    make_tenant("acme", plan=plan)
    created = api.post("/tenants/acme/invitations", {"identifier": "bob@example.com", "role": "admin"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "pending" and body["role"] == "admin" and "/portal/invitations/" in body["link"]
    assert created["Cache-Control"] == "no-store"
    listed = api.get("/tenants/acme/invitations?state=pending")
    (item,) = listed.json()["items"]
    assert item["id"] == body["id"] and "link" not in item
    problem(api.post(f"/tenants/acme/invitations/{body['id']}/revoke"), 428, "precondition_required")
    revoked = api.post(f"/tenants/acme/invitations/{body['id']}/revoke", If_Match=created["ETag"])
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    # The link stops working at once: its token no longer opens an invitation.
    token = body["link"].rstrip("/").rsplit("/", 1)[-1]
    with pytest.raises(InvitationInvalid):
        invitation_for(token=token, user=make_user("bob", email="bob@example.com"))
    problem(api.post(f"/tenants/acme/invitations/{body['id']}/revoke", If_Match=revoked["ETag"]), 409, "not_pending")


def test_a_replayed_invitation_never_holds_the_link(api, plan):
    make_tenant("acme", plan=plan)
    first = api.post("/tenants/acme/invitations", {"identifier": "carol"}, Idempotency_Key="inv-1")
    again = api.post("/tenants/acme/invitations", {"identifier": "carol"}, Idempotency_Key="inv-1")
    assert first.json()["link"] and again.json()["link"] is None and Invitation.objects.count() == 1


def test_invitation_refusals(api, plan):
    make_tenant("acme", plan=plan)
    problem(api.post("/tenants/acme/invitations", {"identifier": ""}), 422, "invalid_request", "identifier")
    problem(api.post("/tenants/acme/invitations", {"identifier": "x", "role": "king"}), 422, "invalid_request", "role")
    problem(api.post("/tenants/nope/invitations", {"identifier": "x"}), 404, "not_found", "slug")
    problem(api.post("/tenants/acme/invitations/999/revoke", If_Match="*"), 404, "not_found", "invitation_id")
    problem(api.get("/tenants/acme/invitations?state=lost"), 400, "invalid_request", "state")
