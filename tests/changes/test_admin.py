"""The change-request admin: schedule, read the before/after, approve (never one's own), and the flag pages' links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from changes.models import ChangeRequest
from tenants.models import Flag, OwnerToggle, TenantFlag
from tenants.services.environments import environment_create
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tests.tenants.factories import make_staff

from .conftest import grant

pytestmark = pytest.mark.django_db

State = ChangeRequest.State
LIST = "/admin/changes/changerequest/"
ADD = "/admin/changes/changerequest/add/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(cast):
    return signed_in(grant(cast.author, "changes.add_changerequest"))


@pytest.fixture
def bob(cast):
    return signed_in(cast.approver)


def when(minutes: int) -> dict:
    moment = timezone.localtime(timezone.now() + timedelta(minutes=minutes))
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def schedule_post(**values) -> dict:
    data = {"operation": "flag.update", "flag": "beta", "tenant": "", "enabled": "", "rollout_percent": "100"}
    data.update({"flag_fields": "{}", "reason": "", "apply_at_0": "", "apply_at_1": "", "revert_at_0": ""})
    data.update({"revert_at_1": ""})
    for name in ("apply_at", "revert_at"):
        if name in values:
            moment = values.pop(name)
            data.update({f"{name}_0": moment["0"], f"{name}_1": moment["1"]})
    data.update(values)
    return data


def test_the_flag_page_offers_to_schedule_a_change(cast, alice):
    page = alice.get(f"/admin/tenants/flag/{cast.flag.pk}/change/").content.decode()
    assert f"{ADD}?operation=flag.update&amp;flag=beta" in page and "Schedule a change…" in page
    tenant_page = alice.get(f"/admin/tenants/tenant/{cast.tenant.pk}/change/").content.decode()
    assert f"{ADD}?operation=flag.set_override&amp;tenant=acme" in tenant_page
    form = alice.get(f"{ADD}?operation=flag.update&flag=beta")
    assert form.status_code == 200 and "Flag fields" in form.content.decode()


def test_scheduling_from_the_admin_creates_a_request_that_applies_later(cast, alice):
    response = alice.post(
        ADD, schedule_post(flag_fields='{"default": true}', apply_at=when(30), revert_at=when(90), reason="launch")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    change = ChangeRequest.objects.get()
    assert response["Location"] == f"{LIST}{change.pk}/change/"
    assert change.state == State.SCHEDULED and change.author == cast.author and change.reason == "launch"
    assert change.params == {"flag": "beta", "fields": {"default": True}}
    assert Flag.objects.get(key="beta").default is False
    detail = alice.get(response["Location"]).content.decode()
    assert 'class="change-diff"' in detail and "after the change" in detail and "<code>false</code>" in detail


def test_an_override_is_scheduled_for_a_tenant(cast, alice):
    response = alice.post(
        ADD,
        schedule_post(
            operation="flag.set_override", tenant="acme", enabled="true", rollout_percent="25", apply_at=when(5)
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    params = ChangeRequest.objects.get().params
    assert params == {"flag": "beta", "tenant": "acme", "enabled": True, "rollout_percent": 25}
    assert not TenantFlag.objects.exists()


def test_an_override_in_another_environment_is_scheduled_there(cast, alice):
    environment_create(tenant=cast.tenant, key="staging", actor=None)
    response = alice.post(
        ADD,
        schedule_post(
            operation="flag.set_override",
            tenant="acme",
            environment="staging",
            enabled="true",
            rollout_percent="25",
            apply_at=when(5),
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ChangeRequest.objects.get().params == {
        "flag": "beta",
        "tenant": "acme",
        "environment": "staging",
        "enabled": True,
        "rollout_percent": 25,
    }
    unknown = alice.post(
        ADD, schedule_post(operation="flag.set_override", tenant="acme", environment="qa", enabled="true")
    )
    assert unknown.status_code == 200 and "no environment &#x27;qa&#x27;" in unknown.content.decode()
    assert ChangeRequest.objects.count() == 1


def test_a_promotion_is_scheduled_without_a_flag(cast, alice):
    environment_create(tenant=cast.tenant, key="staging", actor=None)
    flag_set_override(tenant=cast.tenant, flag=cast.flag, enabled=True, actor=None, environment="staging")
    promote = {"operation": "environment.promote", "flag": "", "tenant": "acme"}
    missing = alice.post(ADD, schedule_post(**promote, apply_at=when(5)))
    assert missing.status_code == 200 and "Choose the environment to promote from" in missing.content.decode()
    response = alice.post(ADD, schedule_post(**promote, source="staging", apply_at=when(5)))
    assert response.status_code == 302, response.content.decode()[:3000]
    change = ChangeRequest.objects.get()
    assert change.params["source"] == "staging" and change.params["target"] == "production"
    assert not TenantFlag.objects.filter(environment="production").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"flag_fields": '{"default": true}', "apply_at": when(30), "revert_at": when(10)},
            "must be later than apply_at",
        ),
        ({"flag_fields": '{"default": false}'}, "these are the flag&#x27;s values already"),
        ({"flag_fields": '{"colour": 1}'}, "not a field a change can set"),
        ({"operation": "flag.set_override", "enabled": "true"}, "Choose the tenant"),
        ({"flag_fields": '{"default": true}', "apply_at": when(-30)}, "is in the past"),
    ],
)
def test_a_bad_schedule_is_a_form_error_and_nothing_is_kept(cast, alice, values, message):
    response = alice.post(ADD, schedule_post(**values))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_a_direct_change_to_a_guarded_flag_becomes_a_change_request(cast, alice):
    response = alice.post(
        f"/admin/tenants/flag/{cast.guarded.pk}/change/",
        {"description": "Payment pipeline.", "default": "on", "tenant_editable": "on", "requires_approval": "on"},
        follow=True,
    )
    change = ChangeRequest.objects.get()
    assert response.redirect_chain[-1][0] == f"{LIST}{change.pk}/change/"
    page = response.content.decode()
    assert "requires approval" in page and f"change request #{change.pk}" in page
    assert change.state == State.PENDING_APPROVAL and change.params == {"flag": "payments", "fields": {"default": True}}
    assert Flag.objects.get(key="payments").default is False


def test_an_override_of_a_guarded_flag_in_the_tenant_form_becomes_a_change_request(cast):
    root = signed_in(make_staff("root"))
    owner = cast.tenant.memberships.get()
    response = root.post(
        f"/admin/tenants/tenant/{cast.tenant.pk}/change/",
        {
            "name": "Acme",
            "plan": cast.tenant.plan_id,
            "settings": "{}",
            "upstream_url": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": owner.pk,
            "memberships-0-tenant": cast.tenant.pk,
            "memberships-0-user": owner.user_id,
            "memberships-0-role": "owner",
            "flag_overrides-TOTAL_FORMS": "1",
            "flag_overrides-INITIAL_FORMS": "0",
            "flag_overrides-0-flag": cast.guarded.pk,
            "flag_overrides-0-enabled": "on",
            "flag_overrides-0-rollout_percent": "30",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "requires approval" in response.content.decode()
    change = ChangeRequest.objects.get()
    assert change.operation == "flag.set_override" and change.state == State.PENDING_APPROVAL
    assert not TenantFlag.objects.exists()


def test_resetting_an_owner_toggle_of_a_guarded_flag_becomes_a_change_request(cast):
    flag_owner_toggle(tenant=cast.tenant, flag=cast.guarded, enabled=True, actor=cast.owner)
    root = signed_in(make_staff("root"))
    root.post("/admin/tenants/tenant/", {"action": "reset_owner_toggles", "_selected_action": [cast.tenant.pk]})
    assert ChangeRequest.objects.get().operation == "flag.owner_reset"
    assert OwnerToggle.objects.filter(flag=cast.guarded).exists()


def test_the_author_cannot_approve_their_own_request_another_staff_user_can(cast, alice, bob):
    flag_set_override(tenant=cast.tenant, flag=cast.guarded, enabled=True, actor=None, approved=True)
    alice.post(
        f"/admin/tenants/flag/{cast.guarded.pk}/change/",
        {"description": "Payment pipeline.", "default": "on", "tenant_editable": "on", "requires_approval": "on"},
    )
    change = ChangeRequest.objects.get()
    own = alice.post(LIST, {"action": "approve", "_selected_action": [change.pk], "index": "0"}, follow=True)
    assert "another staff user must approve it" in own.content.decode()
    assert ChangeRequest.objects.get().state == State.PENDING_APPROVAL
    assert Flag.objects.get(key="payments").default is False
    other = bob.post(LIST, {"action": "approve", "_selected_action": [change.pk], "index": "0"}, follow=True)
    assert "Approved 1 change request(s)" in other.content.decode()
    assert ChangeRequest.objects.get().state == State.APPLIED
    assert Flag.objects.get(key="payments").default is True


def test_the_list_filters_by_state_operation_and_flag(cast, alice):
    alice.post(ADD, schedule_post(flag_fields='{"default": true}', apply_at=when(30)))
    page = alice.get(LIST, {"state": "scheduled", "operation": "flag.update", "flag_key": "beta"}).content.decode()
    assert "Change flag “beta”" in page
    assert "Change flag" not in alice.get(LIST, {"state": "applied"}).content.decode()


def test_view_only_staff_see_requests_but_cannot_act(cast, alice):
    alice.post(ADD, schedule_post(flag_fields='{"default": true}', apply_at=when(30)))
    change = ChangeRequest.objects.get()
    viewer = signed_in(cast.viewer)
    listing = viewer.get(LIST).content.decode()
    assert "Change flag “beta”" in listing
    for name in ("approve", "reject", "cancel"):
        assert f'value="{name}"' not in listing
        response = viewer.post(LIST, {"action": name, "_selected_action": [change.pk], "index": "0"})
        assert response.status_code == 403
    assert viewer.get(f"{LIST}{change.pk}/change/").status_code == 200
    assert viewer.post(f"{LIST}{change.pk}/change/", {"state": "applied"}).status_code == 403
    assert viewer.get(ADD).status_code == 403
    assert ChangeRequest.objects.get().state == State.SCHEDULED


def test_a_request_s_page_offers_the_steps_its_viewer_may_take(cast, alice, bob):
    alice.post(
        f"/admin/tenants/flag/{cast.guarded.pk}/change/",
        {"description": "Payment pipeline.", "default": "on", "tenant_editable": "on", "requires_approval": "on"},
    )
    change = ChangeRequest.objects.get()
    url = f"{LIST}{change.pk}/change/"
    own = alice.get(url).content.decode()
    assert 'value="reject"' in own and 'value="approve"' not in own, "no Approve button for the author"
    other = bob.get(url).content.decode()
    assert 'value="approve"' in other and 'value="reject"' in other
    assert 'value="approve"' not in signed_in(cast.viewer).get(url).content.decode()
    bob.post(LIST, {"action": "approve", "_selected_action": [change.pk], "index": "0"})
    assert 'class="change-step"' not in bob.get(url).content.decode(), "nothing left to do once applied"


def test_an_override_of_a_typed_flag_serves_a_variant_and_a_boolean_one_refuses_it(cast, alice):
    from tenants.services.flags import flag_create

    flag_create(
        key="theme",
        description="",
        default=True,
        tenant_editable=False,
        kind="string",
        default_value="light",
        variants=[{"key": "light", "value": "light", "weight": 50}, {"key": "dark", "value": "dark", "weight": 50}],
        actor=None,
    )
    values = {"operation": "flag.set_override", "tenant": "acme", "enabled": "true", "apply_at": when(5)}
    response = alice.post(ADD, schedule_post(flag="theme", override_values='{"variant": "dark"}', **values))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ChangeRequest.objects.get().params["variant"] == "dark"
    refused = alice.post(ADD, schedule_post(override_values='{"variant": "dark"}', **values))
    assert refused.status_code == 200 and "no variant or value" in refused.content.decode()
    assert ChangeRequest.objects.count() == 1
