"""The context every portal page shares: who is looking, at which tenant, with which role."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.access import Role, role_allows
from portal.selectors import user_memberships
from tenants.models import Membership


def render_tenant(
    request: HttpRequest,
    membership: Membership,
    template: str,
    context: dict | None = None,
    *,
    section: str,
    status: int = 200,
) -> HttpResponse:
    """Render a tenant page with the tenant navigation and switcher."""
    full = {
        "membership": membership,
        "tenant": membership.tenant,
        "section": section,
        "can_change": role_allows(membership.role, Role.ADMIN),
        "is_owner": role_allows(membership.role, Role.OWNER),
        "portal_memberships": user_memberships(request.user),
    }
    full.update(context or {})
    return render(request, template, full, status=status)


def render_page(request: HttpRequest, template: str, context: dict | None = None, *, status: int = 200) -> HttpResponse:
    """Render a page outside any tenant (index, account)."""
    full = {"portal_memberships": user_memberships(request.user), "membership": None}
    full.update(context or {})
    return render(request, template, full, status=status)
