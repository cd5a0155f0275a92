"""Tenant memberships (list, add, change role, remove) and daily usage."""

from __future__ import annotations

from typing import Literal

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from automation.api.auth import staff
from automation.api.http import Problem, acting, client_address, get_or_404, require_if_match, resource
from automation.api.idempotency import idempotent
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from tenants.exceptions import LastOwnerError
from tenants.models import Membership
from tenants.selectors import usage_daily
from tenants.services import memberships as services

router = Router(tags=["members"])

READ = staff("tenants:read", "tenants.view_membership")
ADD = staff("members:write", "tenants.add_membership")
CHANGE = staff("members:write", "tenants.change_membership")
REMOVE = staff("members:write", "tenants.delete_membership")
Role = Literal["owner", "admin", "member"]


class MemberOut(Schema):
    username: str
    role: Role
    created_at: str


class MemberList(Schema):
    items: list[MemberOut]


class MemberIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    role: Role = "member"


class RoleIn(Schema):
    role: Role


class UsageDay(Schema):
    """One UTC day: `requests` (what the quota counts) and any other metric the gateway counted that day."""

    model_config = ConfigDict(extra="allow")

    day: str
    requests: int


class UsageOut(Schema):
    tenant: str
    days: list[UsageDay]


def _member(membership: Membership) -> dict:
    return {
        "username": membership.user.get_username(),
        "role": membership.role,
        "created_at": membership.created_at.isoformat(),
    }


def _membership(tenant, username: str) -> Membership:
    membership = Membership.objects.select_related("user").filter(tenant=tenant, user__username=username).first()
    if membership is None:
        raise Problem(404, "not_found", f"{username!r} is not a member of {tenant.slug!r}.", field="username")
    return membership


def _last_owner(exc: LastOwnerError) -> Problem:
    return Problem(409, "last_owner", exc.message, field="role")


@router.get("/tenants/{slug}/members", auth=READ, response={200: MemberList, **ERRORS}, summary="A tenant's members")
def members_list(request, slug: str):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = Membership.objects.select_related("user").filter(tenant=tenant).order_by("user__username")
    return resource(request, {"items": [_member(row) for row in rows]})


@router.post(
    "/tenants/{slug}/members",
    auth=ADD,
    response={201: MemberOut, **WRITE_ERRORS},
    summary="Add a member (Idempotency-Key)",
)
def member_add(request, slug: str, payload: MemberIn, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
        user = get_user_model().objects.filter(username=payload.username, is_active=True).first()
        if user is None:
            raise Problem(422, "unknown_user", f"No active user {payload.username!r}.", field="username")
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise Problem(409, "conflict", f"{payload.username} is already a member of {slug}.", field="username")
        with acting(request) as actor:
            membership = services.membership_add(
                tenant=tenant, user=user, role=payload.role, actor=actor, ip=client_address(request)
            )
        return resource(request, _member(membership), status=201)

    return idempotent(request, create)


@router.patch(
    "/tenants/{slug}/members/{username}",
    auth=CHANGE,
    response={200: MemberOut, **WRITE_ERRORS},
    summary="Change a member's role (a tenant keeps at least one owner)",
)
def member_update(request, slug: str, username: str, payload: RoleIn, if_match: str | None = IF_MATCH):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    try:
        with acting(request) as actor:
            membership = _membership(tenant, username)
            require_if_match(request, _member(membership))
            membership = services.membership_change_role(
                membership=membership, role=payload.role, actor=actor, ip=client_address(request)
            )
    except LastOwnerError as exc:
        raise _last_owner(exc) from None
    return resource(request, _member(membership))


@router.delete(
    "/tenants/{slug}/members/{username}",
    auth=REMOVE,
    response={204: None, **WRITE_ERRORS},
    summary="Remove a member (a tenant keeps at least one owner)",
)
def member_remove(request, slug: str, username: str, if_match: str | None = IF_MATCH):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    try:
        with acting(request) as actor:
            membership = _membership(tenant, username)
            require_if_match(request, _member(membership))
            services.membership_remove(membership=membership, actor=actor, ip=client_address(request))
    except LastOwnerError as exc:
        raise _last_owner(exc) from None
    return HttpResponse(status=204)


@router.get(
    "/tenants/{slug}/usage",
    auth=staff("tenants:read", "tenants.view_tenant"),
    response={200: UsageOut, **ERRORS},
    tags=["usage"],
    summary="Daily usage, oldest first, zero-filled (live counters included)",
)
def usage_get(request, slug: str, days: int = Query(30, ge=1, le=366)):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = [{**row, "day": row["day"].isoformat()} for row in usage_daily(tenant, days=days)]
    return resource(request, {"tenant": tenant.slug, "days": rows})
