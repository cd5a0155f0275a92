"""Who may see and change which tenant: every tenant page resolves (user, slug) here first.

The order is the security contract: anonymous users are sent to the login page,
a tenant the user is not a member of and an object that is not the tenant's
answer 404 (the same page a missing one gets, so nothing leaks), and only then
do the method (405) and the role (403) checks run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.urls import reverse

from portal.selectors import UnknownEnvironment, user_memberships
from tenants.models import Membership, Tenant

Role = Membership.Role
ROLE_RANK: dict[str, int] = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}
SAFE_METHODS = frozenset({"GET", "HEAD"})

Loader = Callable[[Tenant, str], Any]


def membership_for(user, slug: str) -> Membership:
    """Return `user`'s membership in the tenant `slug`, or raise Http404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such tenant.")
    membership = (
        Membership.objects.select_related("tenant", "tenant__plan")
        .filter(user=user, tenant__slug=slug)
        .exclude(tenant__status=Tenant.Status.DELETED)
        .first()
    )
    if membership is None:
        raise Http404("No such tenant.")
    return membership


def role_allows(role: str, required: str) -> bool:
    """Return True if `role` is at least `required` (member < admin < owner)."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[required]


def login_redirect(request: HttpRequest) -> HttpResponse:
    """Send an anonymous visitor to the portal login, coming back here afterwards."""
    next_url = request.get_full_path() if request.method in SAFE_METHODS else request.path
    return redirect_to_login(next_url, reverse("portal:login"))


def render_error(request: HttpRequest, status: int, message: str, membership: Membership | None = None) -> HttpResponse:
    """Render the portal's own error page with `status`."""
    titles = {403: "Not allowed", 404: "Not found", 405: "Method not allowed"}
    context = {
        "status": status,
        "title": titles.get(status, "Error"),
        "message": message,
        "membership": membership,
        "tenant": membership.tenant if membership else None,
        "portal_memberships": user_memberships(request.user),
    }
    return render(request, "portal/error.html", context, status=status)


def portal_page(view: Callable) -> Callable:
    """Require a logged-in user for a page outside any tenant."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper


def tenant_view(
    *,
    methods: tuple[str, ...] = ("GET",),
    read_role: str = Role.MEMBER,
    write_role: str = Role.ADMIN,
    objects: Mapping[str, Loader] | None = None,
) -> Callable:
    """Resolve the `tenant` URL kwarg (and `objects` kwargs) for the user, then check method and role.

    The wrapped view is called as `view(request, membership, **loaded_objects)`.
    `read_role` applies to GET/HEAD, `write_role` to every other method.
    """
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    loaders = objects or {}

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, tenant: str, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return login_redirect(request)
            membership = None
            try:
                membership = membership_for(request.user, tenant)
                loaded = {name: loader(membership.tenant, kwargs.pop(name)) for name, loader in loaders.items()}
                if kwargs:
                    raise Http404("Unexpected URL argument.")
                if request.method not in allowed:
                    return HttpResponseNotAllowed(sorted(allowed))
                required = read_role if request.method in SAFE_METHODS else write_role
                if not role_allows(membership.role, required):
                    role = Role(required).label.lower()
                    raise PermissionDenied(f"This needs the {role} role in {membership.tenant.name}.")
                # A per-request attribute set like Django's request.user; HttpRequest's stub declares no such field.
                request.portal_membership = membership  # type: ignore[attr-defined]
                return view(request, membership, **loaded)
            except UnknownEnvironment as exc:
                # The tenant's own environment names, asked for by one of its members: nothing foreign to hide.
                return render_error(request, 404, str(exc), membership)
            except Http404:
                # Same body for "not yours" and "does not exist": a foreign id must look absent.
                return render_error(request, 404, "There is nothing here, or you do not have access to it.")
            except PermissionDenied as exc:
                message = str(exc) or "Your role in this tenant does not allow this action."
                return render_error(request, 403, message, membership)

        # Function attributes the URL checks read (tests assert every portal view declares its access).
        wrapper.portal_methods = frozenset(allowed)  # type: ignore[attr-defined]
        wrapper.portal_read_role = read_role  # type: ignore[attr-defined]
        wrapper.portal_write_role = write_role  # type: ignore[attr-defined]
        return wrapper

    return decorator
