"""Tenant invitations: list, invite (the link shown once), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.urls import reverse
from ninja import Field, Query, Router, Schema

from automation.api.auth import staff
from automation.api.http import Problem, acting, client_address, get_or_404, require_if_match, resource
from automation.api.idempotency import idempotent
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from tenants.exceptions import TenantsError
from tenants.models import Invitation
from tenants.services import invitations as services

router = Router(tags=["invitations"])

Role = Literal["owner", "admin", "member"]
State = Literal["pending", "accepted", "declined", "revoked"]
STATE_FILTER = Query(None, description="Only invitations in this state.")


class InvitationOut(Schema):
    id: int
    identifier: str
    role: Role
    state: State
    expires_at: datetime
    created_at: datetime


class InvitationCreated(InvitationOut):
    link: str | None = Field(
        description="The accept link, in this answer only (null when an Idempotency-Key replays it)."
    )


class InvitationList(Schema):
    items: list[InvitationOut]


class InvitationIn(Schema):
    identifier: str = Field(min_length=1, max_length=254, description="A username or an email address.")
    role: Role = "member"


def _invitation(invitation: Invitation) -> dict:
    return {
        "id": invitation.pk,
        "identifier": invitation.identifier,
        "role": invitation.role,
        "state": invitation.state,
        "expires_at": invitation.expires_at,
        "created_at": invitation.created_at,
    }


@router.get(
    "/tenants/{slug}/invitations",
    auth=staff("tenants:read", "tenants.view_invitation"),
    response={200: InvitationList, **ERRORS},
    summary="A tenant's invitations, newest first",
)
def invitations_list(request, slug: str, state: State | None = STATE_FILTER):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = Invitation.objects.filter(tenant=tenant)
    if state:
        rows = rows.filter(state=state)
    return resource(request, {"items": [_invitation(row) for row in rows.order_by("-created_at", "-id")]})


@router.post(
    "/tenants/{slug}/invitations",
    auth=staff("members:write", "tenants.add_invitation"),
    response={201: InvitationCreated, **WRITE_ERRORS},
    summary="Invite a username or email; the accept link is in this answer only (Idempotency-Key)",
)
def invitation_create(request, slug: str, payload: InvitationIn, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
        with acting(request) as actor:
            invitation, token = services.invitation_create(
                tenant=tenant,
                identifier=payload.identifier,
                role=payload.role,
                actor=actor,
                link_for=_link(request),
                ip=client_address(request),
            )
        data = _invitation(invitation)
        response = resource(request, {**data, "link": _link(request)(token)}, status=201, version=data)
        response["Cache-Control"] = "no-store"
        return response

    # A replay never holds the link: its token is not kept anywhere, Redis included.
    return idempotent(request, create, redact=("link",))


def _link(request):
    return lambda token: request.build_absolute_uri(reverse("portal:invitation", args=[token]))


@router.post(
    "/tenants/{slug}/invitations/{invitation_id}/revoke",
    auth=staff("members:write", "tenants.change_invitation"),
    response={200: InvitationOut, **WRITE_ERRORS},
    summary="Withdraw a pending invitation; its link stops working at once",
)
def invitation_revoke(request, slug: str, invitation_id: int, if_match: str | None = IF_MATCH):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    with acting(request) as actor:
        rows = Invitation.objects.select_for_update().filter(tenant=tenant)
        invitation = get_or_404(rows, field="pk", value=invitation_id, what="invitation", param="invitation_id")
        require_if_match(request, _invitation(invitation))
        if invitation.state != Invitation.State.PENDING:
            raise Problem(409, "not_pending", f"This invitation is already {invitation.state}.", field="invitation_id")
        try:
            invitation = services.invitation_revoke(invitation=invitation, actor=actor, ip=client_address(request))
        except TenantsError as exc:
            raise Problem(409, "not_pending", exc.message, field="invitation_id") from None
    return resource(request, _invitation(Invitation.objects.get(pk=invitation.pk)))
