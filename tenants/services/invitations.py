"""Invitations: an owner invites a username or email; only the invitee's acceptance creates a membership.

The inviter learns nothing about accounts: creating an invitation looks the same whether
or not anyone has that username or email. The link token is shown once and stored as a
SHA-256 hash; it works once, until it expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from tenants.exceptions import InvitationExpired, InvitationInvalid, InvitationNotForYou, TenantsError
from tenants.models import Invitation, Membership, Tenant
from tenants.services.memberships import ROLES, membership_add

TOKEN_BYTES = 32


def invitation_token_hash(token: str) -> str:
    """Return the stored form of an invitation token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _snapshot(invitation: Invitation) -> dict:
    return {
        "identifier": invitation.identifier,
        "role": invitation.role,
        "state": invitation.state,
        "expires_at": invitation.expires_at.isoformat(),
    }


def _matches(invitation: Invitation, user: Any) -> bool:
    wanted = invitation.identifier.casefold()
    return user.get_username().casefold() == wanted or bool(user.email and user.email.casefold() == wanted)


def _recipients(identifier: str) -> list[str]:
    # Every active account the identifier names (by username or email, any case).
    users = (
        get_user_model()
        .objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier), is_active=True)
        .exclude(email="")
    )
    return sorted({user.email for user in users})


def _send(invitation: Invitation, link: str) -> None:
    recipients = _recipients(invitation.identifier)
    if not recipients:
        return
    role = Membership.Role(invitation.role).label.lower()
    send_mail(
        subject=f"You are invited to {invitation.tenant.name}",
        message=(
            f"You have been invited to join {invitation.tenant.name} as {role}.\n\n"
            f"Accept or decline: {link}\n\nThe link works once and expires {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,  # the owner has the link on screen: a mail outage must not undo the invitation
    )


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, identifier: str, role: str, actor: Any, link_for: Any, ip: str | None = None
) -> tuple[Invitation, str]:
    """Invite a username or email into a tenant; return (invitation, token) — the token is not stored.

    `link_for(token)` builds the absolute accept URL for the email, sent after commit when
    TENANTS_INVITATION_EMAIL is on.
    """
    identifier = identifier.strip()
    if not identifier:
        raise TenantsError("Enter a username or email address.", field="identifier")
    if role not in ROLES:
        raise TenantsError(f"role must be one of {', '.join(sorted(ROLES))}.", field="role")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation.objects.create(
        tenant=tenant,
        identifier=identifier,
        role=role,
        token_hash=invitation_token_hash(token),
        invited_by=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.TENANTS_INVITATION_TTL),
    )
    audit_record(
        actor=actor,
        action=AuditAction.INVITATION_CREATE,
        tenant=tenant,
        obj=invitation,
        after=_snapshot(invitation),
        ip=ip,
    )
    if settings.TENANTS_INVITATION_EMAIL:
        link = link_for(token)
        transaction.on_commit(lambda: _send(invitation, link))
    return invitation, token


def _pending(token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("tenant")
        .filter(token_hash=invitation_token_hash(token))
        .first()
    )
    if invitation is None or invitation.state != Invitation.State.PENDING:
        raise InvitationInvalid()
    if invitation.tenant.status == Tenant.Status.DELETED:
        raise InvitationInvalid()
    if invitation.expires_at <= timezone.now():
        raise InvitationExpired()
    return invitation


def _respond(invitation: Invitation, *, state: str, action: str, user: Any, ip: str | None) -> None:
    before = _snapshot(invitation)
    invitation.state = state
    invitation.responded_by = user
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["state", "responded_by", "responded_at"])
    audit_record(
        actor=user,
        action=action,
        tenant=invitation.tenant,
        obj=invitation,
        before=before,
        after=_snapshot(invitation),
        ip=ip,
    )


def invitation_for(*, token: str, user: Any) -> Invitation:
    """Return the pending invitation behind `token` if `user` is its invitee; raise a TenantsError otherwise."""
    with transaction.atomic():
        invitation = _pending(token)
    if not _matches(invitation, user):
        raise InvitationNotForYou()
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: Any, ip: str | None = None) -> Membership:
    """Accept an invitation as `user` (whose username or email must match it): create the membership."""
    invitation = _pending(token)
    if not _matches(invitation, user) or not user.is_active:
        raise InvitationNotForYou()
    if Membership.objects.filter(tenant=invitation.tenant, user=user).exists():
        raise TenantsError(f"You are already a member of {invitation.tenant.name}.")
    _respond(invitation, state=Invitation.State.ACCEPTED, action=AuditAction.INVITATION_ACCEPT, user=user, ip=ip)
    return membership_add(tenant=invitation.tenant, user=user, role=invitation.role, actor=user, ip=ip)


@transaction.atomic
def invitation_decline(*, token: str, user: Any, ip: str | None = None) -> Invitation:
    """Decline an invitation as its invitee; no membership is created."""
    invitation = _pending(token)
    if not _matches(invitation, user):
        raise InvitationNotForYou()
    _respond(invitation, state=Invitation.State.DECLINED, action=AuditAction.INVITATION_DECLINE, user=user, ip=ip)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Any, ip: str | None = None) -> Invitation:
    """Withdraw a pending invitation; its link stops working at once."""
    locked = Invitation.objects.select_for_update().select_related("tenant").get(pk=invitation.pk)
    if locked.state != Invitation.State.PENDING:
        raise TenantsError(f"This invitation is already {locked.get_state_display().lower()}.")
    _respond(locked, state=Invitation.State.REVOKED, action=AuditAction.INVITATION_REVOKE, user=actor, ip=ip)
    invitation.state = locked.state
    return locked
