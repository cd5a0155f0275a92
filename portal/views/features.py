"""Features: every flag the tenant sees, why it has its value, and toggles for the editable ones."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from portal.access import Role, tenant_view
from portal.forms import FlagToggleForm
from portal.selectors import flag_history, tenant_flag
from portal.views.layout import render_tenant
from tenants.exceptions import FlagNotEditable, TenantsError
from tenants.selectors import flags_explain
from tenants.services.flags import flag_owner_toggle

REASONS = {
    "default": ("Default", "The flag's global default."),
    "plan": ("Plan", "Set by your plan."),
    "admin_override": ("Platform admin", "Set for your tenant by the platform team."),
    "owner_toggle": ("Your team", "Set by an owner or admin of this tenant."),
    "rollout": ("Rollout", "On for a percentage of subjects."),
    "archived": ("Archived", "The flag is retired and always off."),
}
NOT_EDITABLE = "“{key}” is managed by the platform team and cannot be changed from the portal."


def _explained(tenant, key):
    return next((row for row in flags_explain(tenant) if row.key == key), None)


def toggle_effects(row, tenant_name: str) -> dict:
    """Return what turning the flag on and off would do, in the platform's bounds (shown before confirming)."""
    platform = row.platform
    if platform is None:
        on = f"It will be on for everyone in {tenant_name}."
        kept = ""
    elif not platform["enabled"]:
        on = "The platform team has turned it off for your tenant: turning it on is not possible from the portal."
        kept = ""
    elif platform["percent"] < 100:
        on = f"It will be on for {platform['percent']} % of subjects: the rollout the platform team set."
        kept = f" The platform team's rollout ({platform['percent']} %) is kept and applies again when you turn it on."
    else:
        on = f"It will be on for everyone in {tenant_name}, as the platform team set."
        kept = " The platform team's setting is kept and applies again when you turn it on."
    return {
        "on": on,
        "off": f"It will be off for everyone in {tenant_name}.{kept}",
        "can_turn_on": platform is None or platform["enabled"],
    }


@tenant_view()
def feature_list(request, membership):
    """List the tenant's flags with their effective value and reason, plus recent changes."""
    rows = flags_explain(membership.tenant)
    context = {"flags": rows, "reasons": REASONS, "history": flag_history(membership.tenant)}
    return render_tenant(request, membership, "portal/features.html", context, section="features")


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects={"flag_key": tenant_flag})
def feature_toggle(request, membership, flag_key):
    """Confirm (GET) or apply (POST) an owner toggle of a tenant-editable flag."""
    flag, tenant = flag_key, membership.tenant
    row = _explained(tenant, flag.key)
    if row is None:
        return redirect("portal:features", tenant=tenant.slug)
    if not flag.tenant_editable:
        raise PermissionDenied(NOT_EDITABLE.format(key=flag.key))
    context = {"flag": flag, "row": row, "reasons": REASONS, "effects": toggle_effects(row, tenant.name)}
    if request.method == "GET":
        form = FlagToggleForm(initial={"enabled": "false" if row.enabled else "true"})
        return render_tenant(
            request, membership, "portal/feature_confirm.html", {**context, "form": form}, section="features"
        )
    form = FlagToggleForm(request.POST)
    if not form.is_valid():
        return render_tenant(
            request,
            membership,
            "portal/feature_confirm.html",
            {**context, "form": form},
            section="features",
            status=400,
        )
    enabled = form.cleaned_data["enabled"]
    if flag.risky and not form.cleaned_data["confirm"]:
        # A risky flag needs an explicit second step; without JavaScript this page is that step.
        return render_tenant(
            request, membership, "portal/feature_confirm.html", {**context, "form": form}, section="features"
        )
    try:
        flag_owner_toggle(tenant=tenant, flag=flag, enabled=enabled, actor=request.user, ip=client_ip(request))
    except FlagNotEditable as exc:
        raise PermissionDenied(NOT_EDITABLE.format(key=flag.key)) from exc
    except TenantsError as exc:  # the platform's override bounds the toggle
        form.add_error("enabled", exc.message)
        return render_tenant(
            request,
            membership,
            "portal/feature_confirm.html",
            {**context, "form": form},
            section="features",
            status=400,
        )
    state = "on" if enabled else "off"
    messages.success(request, f"“{flag.key}” is now {state} for {tenant.name}.")
    return redirect(reverse("portal:features", kwargs={"tenant": tenant.slug}) + f"#flag-{flag.key}")
