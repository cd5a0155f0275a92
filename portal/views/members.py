"""Members: owners invite people, change roles and remove members; the last owner stays."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from agentapi_admin.client_address import client_ip
from portal.access import ROLE_RANK, Role, tenant_view
from portal.forms import MemberInviteForm, MemberRoleForm
from portal.selectors import tenant_invitation, tenant_members, tenant_membership, tenant_pending_invitations
from portal.views.layout import render_tenant
from tenants.exceptions import LastOwnerError, TenantsError
from tenants.services.invitations import invitation_create, invitation_revoke
from tenants.services.memberships import membership_change_role, membership_remove


def _list(request, membership, form, *, status=200, created=None):
    members = sorted(tenant_members(membership.tenant), key=lambda m: (-ROLE_RANK[m.role], m.user.get_username()))
    context = {
        "members": members,
        "form": form,
        "roles": Role.choices,
        "invitations": tenant_pending_invitations(membership.tenant) if membership.role == Role.OWNER else [],
        "now": timezone.now(),
        "created": created,
        "emails_sent": settings.TENANTS_INVITATION_EMAIL,
    }
    return render_tenant(request, membership, "portal/members.html", context, section="members", status=status)


@tenant_view(methods=("GET", "POST"), write_role=Role.OWNER)
def member_list(request, membership):
    """List the members; owners invite someone by username or email here."""
    tenant = membership.tenant
    if request.method == "GET":
        return _list(request, membership, MemberInviteForm())
    form = MemberInviteForm(request.POST)

    def link_for(token: str) -> str:
        return request.build_absolute_uri(reverse("portal:invitation", args=[token]))

    if form.is_valid():
        try:
            invitation, token = invitation_create(
                tenant=tenant,
                identifier=form.cleaned_data["identifier"],
                role=form.cleaned_data["role"],
                actor=request.user,
                link_for=link_for,
                ip=client_ip(request),
            )
        except TenantsError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            # The link is rendered once, never stored in plain: the same reasoning as an API key's secret.
            created = {"invitation": invitation, "link": link_for(token)}
            response = _list(request, membership, MemberInviteForm(), created=created)
            add_never_cache_headers(response)
            return response
    return _list(request, membership, form, status=400)


@tenant_view(
    methods=("GET", "POST"),
    read_role=Role.OWNER,
    write_role=Role.OWNER,
    objects={"invitation_id": tenant_invitation},
)
def invitation_revoke_view(request, membership, invitation_id):
    """Confirm (GET) or perform (POST) withdrawing a pending invitation."""
    target = invitation_id
    context = {"target": target}
    if request.method == "GET":
        return render_tenant(request, membership, "portal/invitation_revoke.html", context, section="members")
    try:
        invitation_revoke(invitation=target, actor=request.user, ip=client_ip(request))
    except TenantsError as exc:
        context["error"] = exc.message
        return render_tenant(
            request, membership, "portal/invitation_revoke.html", context, section="members", status=400
        )
    messages.success(request, f"The invitation for {target.identifier} is revoked; its link no longer works.")
    return redirect("portal:members", tenant=membership.tenant.slug)


@tenant_view(
    methods=("GET", "POST"),
    read_role=Role.OWNER,
    write_role=Role.OWNER,
    objects={"membership_id": tenant_membership},
)
def member_role(request, membership, membership_id):
    """Show (GET) or apply (POST) a role change."""
    target = membership_id
    context = {"target": target}
    if request.method == "GET":
        form = MemberRoleForm(initial={"role": target.role})
        return render_tenant(
            request, membership, "portal/member_role.html", {**context, "form": form}, section="members"
        )
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            membership_change_role(
                membership=target, role=form.cleaned_data["role"], actor=request.user, ip=client_ip(request)
            )
        except LastOwnerError as exc:
            form.add_error("role", exc.message)
        except TenantsError as exc:
            form.add_error(None, exc.message)
        else:
            role = Role(form.cleaned_data["role"]).label.lower()
            messages.success(request, f"{target.user.get_username()} is now {role}.")
            return redirect("portal:members", tenant=membership.tenant.slug)
    return render_tenant(
        request, membership, "portal/member_role.html", {**context, "form": form}, section="members", status=400
    )


@tenant_view(
    methods=("GET", "POST"),
    read_role=Role.OWNER,
    write_role=Role.OWNER,
    objects={"membership_id": tenant_membership},
)
def member_remove(request, membership, membership_id):
    """Confirm (GET) or perform (POST) removing a member."""
    target, tenant = membership_id, membership.tenant
    context = {"target": target, "is_self": target.user_id == request.user.pk}
    if request.method == "GET":
        return render_tenant(request, membership, "portal/member_remove.html", context, section="members")
    try:
        membership_remove(membership=target, actor=request.user, ip=client_ip(request))
    except TenantsError as exc:
        # LastOwnerError included: explain on the confirmation page instead of failing.
        context["error"] = exc.message
        return render_tenant(request, membership, "portal/member_remove.html", context, section="members", status=400)
    messages.success(request, f"{target.user.get_username()} no longer has access to {tenant.name}.")
    if context["is_self"]:
        return redirect("portal:index")
    return redirect("portal:members", tenant=tenant.slug)
