"""The invitee's side of an invitation: sign in, then accept or decline at the link's URL."""

from django.contrib import messages
from django.shortcuts import redirect

from agentapi_admin.client_address import client_ip
from portal.access import SAFE_METHODS, portal_page, render_error
from portal.forms import InvitationResponseForm
from portal.views.layout import render_page
from tenants.exceptions import InvitationInvalid, InvitationNotForYou, TenantsError
from tenants.services.invitations import invitation_accept, invitation_decline, invitation_for


@portal_page
def invitation(request, token):
    """Show (GET) or answer (POST `answer=accept|decline`) the invitation behind `token`."""
    if request.method not in SAFE_METHODS | {"POST"}:
        return render_error(request, 405, "Open the link, then accept or decline.")
    try:
        found = invitation_for(token=token, user=request.user)
    except InvitationNotForYou as exc:
        return render_error(request, 403, exc.message)
    except InvitationInvalid as exc:
        return render_error(request, 404, exc.message)
    context = {"invitation": found, "token": token, "form": InvitationResponseForm()}
    if request.method in SAFE_METHODS:
        return render_page(request, "portal/invitation.html", context)
    form = InvitationResponseForm(request.POST)
    if not form.is_valid():
        return render_page(request, "portal/invitation.html", {**context, "form": form}, status=400)
    ip = client_ip(request)
    try:
        if form.cleaned_data["answer"] == "accept":
            membership = invitation_accept(token=token, user=request.user, ip=ip)
        else:
            invitation_decline(token=token, user=request.user, ip=ip)
            messages.success(request, f"You declined the invitation to {found.tenant.name}.")
            return redirect("portal:index")
    except TenantsError as exc:
        form.add_error(None, exc.message)
        return render_page(request, "portal/invitation.html", {**context, "form": form}, status=400)
    messages.success(request, f"You joined {membership.tenant.name} as {membership.get_role_display().lower()}.")
    return redirect("portal:tenant_home", tenant=membership.tenant.slug)
