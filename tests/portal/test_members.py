"""Members page: owners add existing users by username or email, change roles, remove; the last owner stays."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import Membership
from tenants.services.memberships import membership_add

from .sweep import world_state

pytestmark = pytest.mark.django_db


def members_url(world):
    return reverse("portal:members", kwargs={"tenant": world.a.slug})


def role_url(world, membership):
    return reverse("portal:member_role", kwargs={"tenant": world.a.slug, "membership_id": membership.pk})


def remove_url(world, membership):
    return reverse("portal:member_remove", kwargs={"tenant": world.a.slug, "membership_id": membership.pk})


def owner_membership(world):
    return Membership.objects.get(tenant=world.a, user=world.a_owner)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"identifier": "", "role": "member"}, "Enter the username or email"),
        ({"identifier": "outsider", "role": "superuser"}, "Choose owner, admin or member"),
        ({"identifier": "x" * 300, "role": "member"}, "at most 254 characters"),
        ({"identifier": "x" * 200_000, "role": "member"}, "at most 254 characters"),
        ({"identifier": "b-owner\x00", "role": "member"}, "Null characters are not allowed"),
    ],
)
def test_invite_errors_are_explained(world, owner_client, data, message):
    owner_client.get(members_url(world))
    before = world_state()
    response = owner_client.post(members_url(world), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert world_state() == before


def test_owner_changes_a_role(world, owner_client):
    assert owner_client.get(role_url(world, world.a_member_membership)).status_code == 200
    response = owner_client.post(role_url(world, world.a_member_membership), {"role": "admin"})
    assert response.status_code == 302
    world.a_member_membership.refresh_from_db()
    assert world.a_member_membership.role == "admin"
    event = AuditEvent.objects.filter(action="membership.change_role").latest("id")
    assert event.before["role"] == "member" and event.after["role"] == "admin"


def test_the_last_owner_cannot_be_demoted(world, owner_client):
    owner_client.get(members_url(world))
    before = world_state()
    response = owner_client.post(role_url(world, owner_membership(world)), {"role": "member"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "at least one owner" in html and "field-errors" in html
    assert world_state() == before


def test_an_owner_can_step_down_when_another_owner_exists(world, owner_client):
    owner_client.post(role_url(world, world.a_member_membership), {"role": "owner"})
    response = owner_client.post(role_url(world, owner_membership(world)), {"role": "member"})
    assert response.status_code == 302
    assert owner_membership(world).role == "member"
    # Now a member: further member management is refused.
    assert owner_client.post(members_url(world), {"identifier": "outsider", "role": "member"}).status_code == 403
    assert "Invite someone" not in owner_client.get(members_url(world)).content.decode()


@pytest.mark.parametrize("role", ["", "root", "x" * 5000])
def test_bad_roles_are_explained(world, owner_client, role):
    response = owner_client.post(role_url(world, world.a_member_membership), {"role": role})
    assert response.status_code == 400
    assert "role" in response.content.decode().lower()
    world.a_member_membership.refresh_from_db()
    assert world.a_member_membership.role == "member"


def test_owner_removes_a_member(world, owner_client):
    response = owner_client.get(remove_url(world, world.a_member_membership))
    assert response.status_code == 200 and "Remove a-member" in response.content.decode()
    response = owner_client.post(remove_url(world, world.a_member_membership))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=world.a_member_membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.remove", tenant=world.a).exists()


def test_the_last_owner_cannot_be_removed(world, owner_client):
    owner_client.get(members_url(world))
    before = world_state()
    response = owner_client.post(remove_url(world, owner_membership(world)))
    assert response.status_code == 400
    assert "at least one owner" in response.content.decode()
    assert world_state() == before


def test_removing_yourself_leads_back_to_the_tenant_list(world, owner_client):
    membership_add(tenant=world.a, user=world.outsider, role="owner", actor=None)
    response = owner_client.post(remove_url(world, owner_membership(world)))
    assert response.status_code == 302 and response["Location"] == reverse("portal:index")
    assert owner_client.get(members_url(world)).status_code == 404


def test_members_page_shows_roles_owners_first(world, member_client):
    html = member_client.get(members_url(world)).content.decode()
    table = html.split('id="members-title"')[1]
    assert table.index("a-owner") < table.index("a-admin") < table.index("a-member")
    assert "Invite someone" not in html and "Change role" not in html and "later@acme.test" not in html
