"""The admin API's change requests: list, get, create (Idempotency-Key), approve, reject, cancel; the 202 of a
write to a flag that requires approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from changes.models import ChangeRequest
from tenants.models import Flag, TenantFlag
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import make_operator, make_token

pytestmark = pytest.mark.django_db

State = ChangeRequest.State


def later(minutes: int) -> str:
    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def alice_api(cast):
    return AdminApi(make_token(make_operator("alice-bot"))[1])


@pytest.fixture
def bob_api(cast):
    return AdminApi(make_token(make_operator("bob-bot"))[1])


def test_create_then_list_and_get(cast, alice_api):
    body = {"operation": "flag.update", "params": {"flag": "beta", "fields": {"default": True}}, "apply_at": later(30)}
    created = alice_api.post("/changes", body, Idempotency_Key="k-1")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["state"] == "scheduled" and data["author"] == "alice-bot" and data["flag"] == "beta"
    assert created["Location"] == f"/api/v1/admin/changes/{data['id']}" == data["url"]
    replay = alice_api.post("/changes", body, Idempotency_Key="k-1")
    assert replay["Idempotency-Replayed"] == "true" and ChangeRequest.objects.count() == 1
    listed = alice_api.get("/changes?state=scheduled&flag=beta").json()
    assert [item["id"] for item in listed["items"]] == [data["id"]] and listed["next_cursor"] is None
    assert alice_api.get("/changes?state=applied").json()["items"] == []
    got = alice_api.get(f"/changes/{data['id']}")
    assert got.json() == data and got["ETag"]
    problem(alice_api.get("/changes/999999"), 404, "not_found", "change_id")
    problem(alice_api.get("/changes?state=nope"), 400, "invalid_request")


def test_list_pages_with_a_cursor(cast, alice_api):
    for minutes in (10, 20, 30):
        alice_api.post(
            "/changes",
            {
                "operation": "flag.update",
                "params": {"flag": "beta", "fields": {"risky": True}},
                "apply_at": later(minutes),
            },
        )
    first = alice_api.get("/changes?limit=2").json()
    second = alice_api.get(f"/changes?limit=2&cursor={first['next_cursor']}").json()
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3 and second["next_cursor"] is None


def test_a_bad_change_is_a_422_naming_the_field(cast, alice_api):
    bad = alice_api.post(
        "/changes", {"operation": "flag.update", "params": {"flag": "nope", "fields": {"default": True}}}
    )
    problem(bad, 422, "invalid_request", "flag")
    bad = alice_api.post(
        "/changes",
        {
            "operation": "flag.update",
            "params": {"flag": "beta", "fields": {"default": True}},
            "apply_at": later(30),
            "revert_at": later(10),
        },
    )
    problem(bad, 422, "invalid_request", "revert_at")
    assert not ChangeRequest.objects.exists()


def test_a_write_to_a_guarded_flag_answers_202_with_the_change_request(cast, alice_api):
    flag = alice_api.get("/flags/payments")
    answer = alice_api.patch("/flags/payments", {"default": True}, If_Match=flag["ETag"])
    assert answer.status_code == 202, answer.content
    change = ChangeRequest.objects.get()
    assert answer["Location"] == f"/api/v1/admin/changes/{change.pk}"
    assert answer.json()["state"] == "pending_approval" and answer.json()["params"]["fields"] == {"default": True}
    assert Flag.objects.get(key="payments").default is False
    put = alice_api.put("/tenants/acme/overrides/payments", {"enabled": True, "rollout_percent": 10})
    assert put.status_code == 202 and put.json()["operation"] == "flag.set_override"
    assert not TenantFlag.objects.exists()


def test_the_author_cannot_approve_another_staff_user_can(cast, alice_api, bob_api):
    created = alice_api.post(
        "/changes", {"operation": "flag.update", "params": {"flag": "payments", "fields": {"default": True}}}
    )
    assert created.status_code == 201 and created.json()["state"] == "pending_approval"
    url = f"/changes/{created.json()['id']}"
    etag = alice_api.get(url)["ETag"]
    problem(alice_api.post(f"{url}/approve"), 428, "precondition_required", "If-Match")
    own = alice_api.post(f"{url}/approve", If_Match=etag)
    body = problem(own, 422, "invalid_request", "approved_by")
    assert "another staff user must approve it" in body["detail"]
    assert Flag.objects.get(key="payments").default is False
    approved = bob_api.post(f"{url}/approve", If_Match=etag)
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "applied" and approved.json()["approved_by"] == "bob-bot"
    assert Flag.objects.get(key="payments").default is True
    update = AuditEvent.objects.filter(action="flag.update").latest("id")
    assert update.actor_label == "alice-bot" and "approved by bob-bot" in update.reason
    problem(bob_api.post(f"{url}/approve", If_Match=approved["ETag"]), 422, "invalid_request", "state")


def test_reject_and_cancel_need_their_scope_and_the_current_etag(cast, alice_api, bob_api):
    created = alice_api.post(
        "/changes", {"operation": "flag.update", "params": {"flag": "payments", "fields": {"default": True}}}
    )
    url = f"/changes/{created.json()['id']}"
    reader = AdminApi(make_token(make_operator("reader", scopes=("changes:read",)), scopes=("changes:read",))[1])
    problem(reader.post(f"{url}/reject", {"reason": "no"}, If_Match=created["ETag"]), 403, "insufficient_scope")
    problem(bob_api.post(f"{url}/reject", {"reason": "no"}, If_Match='"stale"'), 412, "precondition_failed")
    rejected = bob_api.post(f"{url}/reject", {"reason": "freeze"}, If_Match=created["ETag"])
    assert rejected.json()["state"] == "rejected" and rejected.json()["closed_by"] == "bob-bot"
    second = alice_api.post(
        "/changes",
        {"operation": "flag.update", "params": {"flag": "beta", "fields": {"default": True}}, "apply_at": later(5)},
    )
    cancelled = alice_api.post(f"/changes/{second.json()['id']}/cancel", {}, If_Match=second["ETag"])
    assert cancelled.json()["state"] == "cancelled"
