"""Scheduled changes: an owner schedules their own toggle; everyone who may change flags sees what is scheduled."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect

from agentapi_admin.client_address import client_ip
from audit.models import AuditAction
from changes.exceptions import ChangesError
from changes.models import ChangeRequest
from changes.selectors import changes_for_tenant
from changes.services import change_cancel, change_request_create
from portal.access import Role, tenant_view
from portal.forms import ScheduleToggleForm
from portal.selectors import tenant_flag
from portal.views.features import NOT_EDITABLE, environment_context
from portal.views.layout import render_tenant
from tenants.models import PRODUCTION, Membership

SHOWN = 100


def _rows(membership):
    """The tenant's requests, newest first; authors outside the tenant are "the platform team"."""
    members = set(Membership.objects.filter(tenant=membership.tenant).values_list("user_id", flat=True))
    rows = []
    for change in changes_for_tenant(membership.tenant)[:SHOWN]:
        own = change.operation == AuditAction.FLAG_OWNER_TOGGLE and change.author_id in members
        rows.append(
            {
                "change": change,
                "by": change.author.get_username() if own and change.author else "The platform team",
                "platform": not own,
                "can_cancel": change.author_id == membership.user_id
                and (
                    change.state in ChangeRequest.OPEN_STATES
                    or (change.state == ChangeRequest.State.APPLIED and change.revert_at and not change.reverted_at)
                ),
            }
        )
    return rows


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN)
def scheduled_changes(request, membership):
    """List the changes scheduled for this tenant (GET); cancel one of your own (POST `change`)."""
    if request.method == "POST":
        raw = request.POST.get("change", "")
        change = changes_for_tenant(membership.tenant).filter(pk=raw).first() if raw.isdigit() else None
        if change is None:
            raise Http404("No such change.")
        if change.operation != AuditAction.FLAG_OWNER_TOGGLE or change.author_id != request.user.pk:
            raise PermissionDenied("Only whoever scheduled a change can cancel it here; ask the platform team.")
        try:
            change_cancel(change=change, actor=request.user, ip=client_ip(request))
        except ChangesError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Cancelled: {change.summary}.")
        return redirect("portal:changes", tenant=membership.tenant.slug)
    context = {"rows": _rows(membership)}
    return render_tenant(request, membership, "portal/changes.html", context, section="changes")


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects={"flag_key": tenant_flag})
def feature_schedule(request, membership, flag_key):
    """Schedule an owner toggle of a tenant-editable flag at a time, optionally put back later."""
    flag, tenant = flag_key, membership.tenant
    if not flag.tenant_editable:
        raise PermissionDenied(NOT_EDITABLE.format(key=flag.key))
    where = environment_context(request, tenant)
    environment = where["environment"]
    form = ScheduleToggleForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound and form.is_valid():
        try:
            change = change_request_create(
                operation=AuditAction.FLAG_OWNER_TOGGLE,
                params={
                    "flag": flag.key,
                    "tenant": tenant.slug,
                    **({} if environment == PRODUCTION else {"environment": environment}),
                    "enabled": form.cleaned_data["enabled"],
                },
                apply_at=form.cleaned_data["apply_at"],
                revert_at=form.cleaned_data["revert_at"],
                author=request.user,
                ip=client_ip(request),
            )
        except ChangesError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Scheduled: {change.summary}.")
            return redirect("portal:changes", tenant=tenant.slug)
    if form.is_bound:
        status = 400
    context = {"flag": flag, "form": form, **where}
    return render_tenant(
        request, membership, "portal/feature_schedule.html", context, section="features", status=status
    )
