"""Environments: list with what lives in each, add, delete, and promote one's owner toggles onto another."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from portal.access import Role, tenant_view
from portal.forms import EnvironmentCreateForm, EnvironmentPromoteForm
from portal.selectors import tenant_environment, tenant_environment_rows
from portal.views.features import env_query
from portal.views.layout import render_tenant
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.models import PRODUCTION
from tenants.selectors import tenant_environments
from tenants.services.environments import (
    OWNER_TOGGLES,
    EnvironmentChanged,
    EnvironmentDiff,
    LayerChange,
    environment_create,
    environment_delete,
    environment_diff,
    environment_promote,
)

# Owners promote their own layer only: the platform's overrides are the platform's to move.
OWNER_LAYERS = [OWNER_TOGGLES]
VERBS = {"add": "Add", "change": "Change", "remove": "Remove"}


def _bound(membership, rows) -> dict:
    allowed = membership.tenant.plan.max_environments
    return {"allowed": allowed, "used": len(rows), "room": len(rows) < allowed}


def _list_page(request, membership, form, *, status=200):
    rows = tenant_environment_rows(membership.tenant)
    context = {"rows": rows, "form": form, "bound": _bound(membership, rows)}
    return render_tenant(
        request, membership, "portal/environments.html", context, section="environments", status=status
    )


@tenant_view(methods=("GET", "POST"), write_role=Role.ADMIN)
def environment_list(request, membership):
    """List the tenant's environments with their counts; owners and admins add one here."""
    if request.method == "GET":
        return _list_page(request, membership, EnvironmentCreateForm())
    form = EnvironmentCreateForm(request.POST)
    if not form.is_valid():
        return _list_page(request, membership, form, status=400)
    try:
        environment = environment_create(
            tenant=membership.tenant,
            key=form.cleaned_data["key"],
            name=form.cleaned_data["name"],
            actor=request.user,
            ip=client_ip(request),
        )
    except TenantsError as exc:
        # The service's message starts with the field's name; the form shows it beside the field.
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message.removeprefix(f"{exc.field}: "))
        return _list_page(request, membership, form, status=400)
    messages.success(request, f"“{environment.key}” was added. Pick it on the features page to change its flags.")
    return redirect("portal:environments", tenant=membership.tenant.slug)


@tenant_view(
    methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects={"environment": tenant_environment}
)
def environment_delete_view(request, membership, environment):
    """Confirm (GET) or perform (POST) deleting an environment with its overrides and owner toggles."""
    tenant = membership.tenant
    [row] = [row for row in tenant_environment_rows(tenant) if row.key == environment.key]
    error, status = None, 200
    if request.method == "POST":
        try:
            environment_delete(
                tenant=tenant,
                key=environment.key,
                actor=request.user,
                may_remove_overrides=False,  # the platform's overrides are the platform team's to remove
                ip=client_ip(request),
            )
        except TenantsError as exc:
            error, status = exc.message.removeprefix("environment: "), 409
        else:
            messages.success(request, f"“{environment.key}” was deleted with its overrides and owner toggles.")
            return redirect("portal:environments", tenant=tenant.slug)
    context = {"environment": environment, "row": row, "error": error}
    return render_tenant(
        request, membership, "portal/environment_delete.html", context, section="environments", status=status
    )


def _state_text(state: dict | None) -> str:
    """Return an owner toggle's state as the diff shows it."""
    if state is None:
        return "not set"
    text = "on" if state.get("enabled") else "off"
    if state.get("variant"):
        text += f", variant {state['variant']}"
    return text


def _diff_rows(diff: EnvironmentDiff) -> list[dict]:
    return [_change_row(change) for change in diff.changes]


def _change_row(change: LayerChange) -> dict:
    return {
        "flag": change.flag,
        "layer": "owner toggle" if change.layer == OWNER_TOGGLES else "override",
        "verb": change.verb,
        "verb_label": VERBS[change.verb],
        "before": _state_text(change.before),
        "after": _state_text(change.after),
    }


def _promote_page(request, membership, form, diff, *, environments, error=None, status=200):
    context = {
        "form": form,
        "diff": diff,
        "changes": _diff_rows(diff) if diff is not None else None,
        "error": error,
        "has_others": len(environments) > 1,
    }
    return render_tenant(
        request, membership, "portal/environment_promote.html", context, section="environments", status=status
    )


def _diff_or_error(form, tenant) -> EnvironmentDiff | None:
    try:
        return environment_diff(
            tenant=tenant, source=form.cleaned_data["source"], target=form.cleaned_data["target"], layers=OWNER_LAYERS
        )
    except TenantsError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message.removeprefix(f"{exc.field}: "))
        return None


@tenant_view(methods=("GET", "POST"), write_role=Role.ADMIN)
def environment_promote_view(request, membership):
    """Show what promoting one environment's owner toggles onto another changes (GET), then apply it (POST)."""
    tenant = membership.tenant
    environments = tenant_environments(tenant)
    if request.method == "GET":
        if "source" not in request.GET and "target" not in request.GET:
            others = [key for key in environments if key != PRODUCTION]
            initial = {"source": others[0] if others else PRODUCTION, "target": PRODUCTION}
            form = EnvironmentPromoteForm(initial=initial, environments=environments)
            return _promote_page(request, membership, form, None, environments=environments)
        form = EnvironmentPromoteForm(request.GET, environments=environments)
        diff = _diff_or_error(form, tenant) if form.is_valid() else None
        status = 200 if diff is not None else 400
        return _promote_page(request, membership, form, diff, environments=environments, status=status)

    form = EnvironmentPromoteForm(request.POST, environments=environments)
    if not form.is_valid():
        return _promote_page(request, membership, form, None, environments=environments, status=400)
    source, target = form.cleaned_data["source"], form.cleaned_data["target"]
    try:
        diff = environment_promote(
            tenant=tenant,
            source=source,
            target=target,
            digest=form.cleaned_data["digest"],
            layers=OWNER_LAYERS,
            actor=request.user,
            ip=client_ip(request),
        )
    except (EnvironmentChanged, ApprovalRequired) as exc:
        message = exc.message
        if isinstance(exc, ApprovalRequired):
            message = (
                "This promotion changes a feature that needs the platform team's approval for every change: "
                "ask the platform team to make it."
            )
        # Refused: the diff as it is now, to review and confirm again.
        diff = _diff_or_error(form, tenant)
        return _promote_page(request, membership, form, diff, environments=environments, error=message, status=409)
    except TenantsError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message.removeprefix(f"{exc.field}: "))
        return _promote_page(request, membership, form, None, environments=environments, status=400)
    count = len(diff.changes)
    if count:
        messages.success(request, f"Promoted {source} to {target}: {count} change{'' if count == 1 else 's'}.")
    else:
        messages.info(request, f"Nothing to promote: {target} already has {source}'s owner toggles.")
    return redirect(reverse("portal:features", kwargs={"tenant": tenant.slug}) + env_query(target))
