"""The site's front door (a sign-in chooser), the tenant switcher and each tenant's overview."""

from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from portal.access import portal_page, tenant_view
from portal.selectors import tenant_overview, user_memberships
from portal.views.layout import render_page, render_tenant


@require_safe
def welcome(request):
    """Offer the two ways in: the admin for platform staff, the portal for tenant owners and members."""
    return render(request, "portal/welcome.html")


@portal_page
@require_safe
def index(request):
    """List the user's tenants; with exactly one, go straight to it."""
    memberships = user_memberships(request.user)
    if len(memberships) == 1:
        return redirect("portal:tenant_home", tenant=memberships[0].tenant.slug)
    return render_page(request, "portal/index.html", {"memberships": memberships})


@tenant_view()
def tenant_home(request, membership):
    """Show the tenant's status, plan and what the user can do here."""
    overview = tenant_overview(membership.tenant)
    return render_tenant(request, membership, "portal/tenant_home.html", {"overview": overview}, section="home")
