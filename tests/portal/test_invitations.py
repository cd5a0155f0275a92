"""Invitations: owners invite by username or email, the invitee accepts; nothing reveals who has an account."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tenants.models import Invitation, Membership
from tests.tenants.factories import make_staff, make_user

from .conftest import client_for
from .sweep import world_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(settings):
    """Invitation emails on, delivered to Django's locmem outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TENANTS_INVITATION_EMAIL = True
    mail.outbox.clear()
    return mail.outbox


def members_url(world):
    return reverse("portal:members", kwargs={"tenant": world.a.slug})


def invite(client, world, identifier, role="member"):
    """POST the invite form; return (response, accept path from the page)."""
    with_commit = client.post(members_url(world), {"identifier": identifier, "role": role})
    html = with_commit.content.decode()
    match = re.search(r'id="invitation-link" type="text" readonly value="http://testserver([^"]+)"', html)
    return with_commit, match.group(1) if match else None


def normalised(response, identifier, link):
    """The page up to the pending list (which grows), with identifier, link and expiry masked."""
    html = response.content.decode().split('id="pending-title"')[0]
    html = html.replace(identifier, "IDENTIFIER").replace(link, "LINK")
    html = re.sub(r"\d{4}-\d\d-\d\d[ T][0-9:.+]+(?: UTC)?", "TIME", html)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_answer_is_the_same_whether_or_not_an_account_exists(
    world, owner_client, mailbox, django_capture_on_commit_callbacks
):
    owner_client.get(members_url(world))
    pages = []
    for identifier in ("outsider@example.test", "nobody@example.test", "outsider", "no-such-user"):
        with django_capture_on_commit_callbacks(execute=True):
            response, link = invite(owner_client, world, identifier)
        assert response.status_code == 200 and link
        assert response["Cache-Control"].startswith("max-age=0")
        pages.append(normalised(response, identifier, link))
    assert len(set(pages)) == 1
    assert Membership.objects.filter(tenant=world.a, user=world.outsider).count() == 0
    # Mail goes only where an account exists, and the inviter is never told.
    assert [m.to for m in mailbox] == [["outsider@example.test"], ["outsider@example.test"]]
    assert "/portal/invitations/" in mailbox[0].body


def test_the_invitee_accepts_once_and_joins_with_the_role(world, owner_client):
    _, link = invite(owner_client, world, "OUTSIDER@Example.Test", role="admin")
    invitee = client_for(world.outsider)
    page = invitee.get(link)
    assert page.status_code == 200 and "Join Acme?" in page.content.decode()
    response = invitee.post(link, {"answer": "accept"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:tenant_home", args=["acme"])
    assert Membership.objects.get(tenant=world.a, user=world.outsider).role == "admin"
    # Single use: the same link is dead now.
    again = invitee.post(link, {"answer": "accept"})
    assert again.status_code == 404 and "not valid" in again.content.decode()
    actions = list(AuditEvent.objects.filter(tenant=world.a).order_by("id").values_list("action", "actor_label"))
    assert actions[-3:] == [
        ("invitation.create", "a-owner"),
        ("invitation.accept", "outsider"),
        ("membership.add", "outsider"),
    ]


def test_usernames_match_case_insensitively(world, owner_client):
    _, link = invite(owner_client, world, "OutSider")
    assert client_for(world.outsider).post(link, {"answer": "accept"}).status_code == 302
    assert Membership.objects.filter(tenant=world.a, user=world.outsider).exists()


def test_decline_leaves_no_membership(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    invitee = client_for(world.outsider)
    assert invitee.post(link, {"answer": "decline"}).status_code == 302
    assert not Membership.objects.filter(tenant=world.a, user=world.outsider).exists()
    assert Invitation.objects.get(identifier="outsider").state == "declined"
    assert AuditEvent.objects.filter(action="invitation.decline", actor_label="outsider").exists()
    assert invitee.post(link, {"answer": "accept"}).status_code == 404


def test_an_expired_invitation_leaves_nothing(world, owner_client, settings):
    _, link = invite(owner_client, world, "outsider")
    Invitation.objects.filter(identifier="outsider").update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    invitee = client_for(world.outsider)
    invitee.get(reverse("portal:index"))  # session activity settles first
    before = world_state()
    response = invitee.post(link, {"answer": "accept"})
    assert response.status_code == 404 and "expired" in response.content.decode()
    assert world_state() == before


def test_the_ttl_setting_sets_the_expiry(world, owner_client, settings):
    settings.TENANTS_INVITATION_TTL = 3600
    invite(owner_client, world, "outsider")
    invitation = Invitation.objects.get(identifier="outsider")
    assert abs((invitation.expires_at - invitation.created_at).total_seconds() - 3600) < 5


def test_another_user_cannot_accept(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    stranger = client_for(make_user("stranger", email="stranger@example.test"))
    stranger.get(reverse("portal:index"))  # session activity settles first
    before = world_state()
    for response in (stranger.get(link), stranger.post(link, {"answer": "accept"})):
        assert response.status_code == 403
        html = response.content.decode()
        assert "for another account" in html and "Acme" not in html and "outsider" not in html
    assert world_state() == before
    assert client_for(world.outsider).post(link, {"answer": "accept"}).status_code == 302  # still usable by its invitee


def test_the_superuser_is_not_attached_without_accepting(world, owner_client):
    root = make_staff("root")
    root.email = "root@platform.test"
    root.save()
    response, link = invite(owner_client, world, "root", role="owner")
    assert response.status_code == 200
    assert not Membership.objects.filter(user=root).exists()
    assert "root@platform.test" not in response.content.decode()
    assert "root@platform.test" not in owner_client.get(members_url(world)).content.decode()
    assert client_for(root).post(link, {"answer": "decline"}).status_code == 302
    assert not Membership.objects.filter(user=root).exists()


def test_anonymous_visitors_are_offered_to_sign_in(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    response = Client().get(link)
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))
    assert Client().get(reverse("portal:invitation", args=["x" * 43])).status_code == 302


def test_an_unknown_token_is_a_404(world):
    response = client_for(world.outsider).get(reverse("portal:invitation", args=["x" * 43]))
    assert response.status_code == 404


def test_owner_lists_and_revokes_pending_invitations(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    invitation = Invitation.objects.get(identifier="outsider")
    html = owner_client.get(members_url(world)).content.decode()
    assert "Pending invitations" in html and "outsider as member" in html
    revoke = reverse("portal:invitation_revoke", kwargs={"tenant": "acme", "invitation_id": invitation.pk})
    assert owner_client.get(revoke).status_code == 200
    assert owner_client.post(revoke).status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    assert AuditEvent.objects.filter(action="invitation.revoke", actor_label="a-owner").exists()
    assert client_for(world.outsider).post(link, {"answer": "accept"}).status_code == 404
    assert owner_client.post(revoke).status_code == 400  # already revoked: explained, not a 500


def test_the_token_is_stored_hashed(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(identifier="outsider")
    assert token not in invitation.token_hash and len(invitation.token_hash) == 64
    assert not AuditEvent.objects.filter(after__icontains=token).exists()


def test_a_bad_answer_is_a_400(world, owner_client):
    _, link = invite(owner_client, world, "outsider")
    response = client_for(world.outsider).post(link, {"answer": "maybe"})
    assert response.status_code == 400 and "Choose accept or decline" in response.content.decode()
