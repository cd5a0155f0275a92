"""Features: every flag the tenant sees, why it has its value, and toggles for the editable ones."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from portal.access import Role, tenant_view
from portal.forms import EnvironmentEvaluateForm, FlagToggleForm
from portal.selectors import flag_history, selected_environment, tenant_flag
from portal.views.layout import render_tenant
from tenants.exceptions import FlagNotEditable, TenantsError
from tenants.flag_text import layers_text, platform_text
from tenants.models import PRODUCTION
from tenants.selectors import flags_evaluate_explained, flags_explain, tenant_environments
from tenants.services.flags import flag_owner_toggle

REASONS = {
    "default": ("Default", "The flag's global default."),
    "plan": ("Plan", "Set by your plan."),
    "admin_override": ("Platform admin", "Set for your tenant by the platform team."),
    "owner_toggle": ("Your team", "Set by an owner or admin of this tenant."),
    "rollout": ("Rollout", "On for a percentage of subjects."),
    "rule": ("Rule", "A targeting rule of the flag decided."),
    "split": ("Split", "Subjects are split between the flag's variants."),
    "archived": ("Archived", "The flag is retired and always off."),
}
NOT_EDITABLE = "“{key}” is managed by the platform team and cannot be changed from the portal."


def _explained(tenant, key, environment):
    return next((row for row in flags_explain(tenant, environment=environment) if row.key == key), None)


def env_query(environment: str) -> str:
    """Return the query string that keeps `environment` selected (none for production, the plain URL)."""
    return "" if environment == PRODUCTION else f"?env={environment}"


def environment_context(request, tenant) -> dict:
    """Return the selected environment (`?env=`, production by default) and the tenant's environments.

    Raise UnknownEnvironment (a 404 naming the tenant's environments) for one the tenant does not have.
    """
    environments = tenant_environments(tenant)
    environment = selected_environment(tenant, request.GET.get("env"), environments)
    return {"environment": environment, "environments": environments, "env_query": env_query(environment)}


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


def variant_choices(row, flag) -> list[dict]:
    """Return the variants the platform lets owners pick for this flag: key, value and what picking it does."""
    platform = row.platform
    if platform is None or not platform["enabled"] or not row.owner_variants:
        return []
    values = {v["key"]: v["value"] for v in flag.variants}
    share = "every subject" if platform["percent"] >= 100 else f"the {platform['percent']} % of subjects in the rollout"
    return [
        {
            "key": key,
            "value": json.dumps(values.get(key)),
            "effect": f"Serves {json.dumps(values.get(key))} to {share}.",
            "current": key == row.owner_variant,
        }
        for key in row.owner_variants
    ]


def _platform_serves(row) -> str:
    platform = row.platform or {}
    if platform.get("variant"):
        return f"variant {platform['variant']}"
    if platform.get("value") is not None:
        return json.dumps(platform["value"])
    return "the flag's own value or split"


def row_view(row) -> dict:
    """Return what the features table shows of a flag beyond its explanation: the value and both layers."""
    return {
        "row": row,
        "value_json": json.dumps(row.value),
        "layers": layers_text(row, owner_label="your choice"),
        "platform": platform_text(row.platform),
        "platform_serves": _platform_serves(row),
        "choosable": bool(row.owner_variants) and bool(row.platform and row.platform["enabled"]),
    }


@tenant_view()
def feature_list(request, membership):
    """List the flags of the selected environment with their effective value and reason, plus recent changes."""
    where = environment_context(request, membership.tenant)
    rows = flags_explain(membership.tenant, environment=where["environment"])
    context = {
        **where,
        "flags": rows,
        "flag_views": [row_view(row) for row in rows],
        "reasons": REASONS,
        "history": flag_history(membership.tenant),
    }
    return render_tenant(request, membership, "portal/features.html", context, section="features")


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects={"flag_key": tenant_flag})
def feature_toggle(request, membership, flag_key):
    """Confirm (GET) or apply (POST) an owner toggle of a tenant-editable flag in the selected environment."""
    flag, tenant = flag_key, membership.tenant
    where = environment_context(request, tenant)
    environment = where["environment"]
    features = reverse("portal:features", kwargs={"tenant": tenant.slug}) + where["env_query"]
    row = _explained(tenant, flag.key, environment)
    if row is None:
        return redirect(features)
    if not flag.tenant_editable:
        raise PermissionDenied(NOT_EDITABLE.format(key=flag.key))
    context = {
        **where,
        "flag": flag,
        "row": row,
        "view": row_view(row),
        "reasons": REASONS,
        "effects": toggle_effects(row, tenant.name),
        "variants": variant_choices(row, flag),
    }
    if request.method == "GET":
        turn_on = not row.enabled or bool(context["variants"])
        form = FlagToggleForm(initial={"enabled": "true" if turn_on else "false", "variant": row.owner_variant or ""})
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
    enabled, variant = (
        form.cleaned_data["enabled"],
        form.cleaned_data["variant"] if form.cleaned_data["enabled"] else "",
    )
    if flag.risky and not form.cleaned_data["confirm"]:
        # A risky flag needs an explicit second step; without JavaScript this page is that step.
        return render_tenant(
            request, membership, "portal/feature_confirm.html", {**context, "form": form}, section="features"
        )
    try:
        flag_owner_toggle(
            tenant=tenant,
            flag=flag,
            enabled=enabled,
            variant=variant,
            environment=environment,
            actor=request.user,
            ip=client_ip(request),
        )
    except FlagNotEditable as exc:
        raise PermissionDenied(NOT_EDITABLE.format(key=flag.key)) from exc
    except TenantsError as exc:  # the platform's override bounds the toggle
        form.add_error("variant" if exc.field == "variant" else "enabled", exc.message)
        return render_tenant(
            request,
            membership,
            "portal/feature_confirm.html",
            {**context, "form": form},
            section="features",
            status=400,
        )
    state = ("on" + (f", variant {variant}" if variant else "")) if enabled else "off"
    where_text = "" if environment == PRODUCTION else f" in {environment}"
    messages.success(request, f"“{flag.key}” is now {state} for {tenant.name}{where_text}.")
    return redirect(f"{features}#flag-{flag.key}")


@tenant_view()
def flag_evaluate(request, membership):
    """Evaluate the flags of an environment for a subject and context, as the service API would (read-only)."""
    tenant = membership.tenant
    environments = tenant_environments(tenant)
    form = EnvironmentEvaluateForm(request.GET if request.GET else None, environments=environments)
    rows, subject, context, environment = None, None, dict[str, object](), PRODUCTION
    if form.is_valid():
        subject, context = form.evaluation_input()
        environment = form.cleaned_data["env"]
        # Archived flags are hidden here as on the features page; rules are named by position only,
        # since a segment's key may name other tenants.
        answers = flags_evaluate_explained(tenant, subject, context, environment=environment)
        rows = [row for row in answers if row.reason != "archived"]
    return render_tenant(
        request,
        membership,
        "portal/evaluate.html",
        {
            "form": form,
            "rows": rows,
            "subject": subject or str(tenant.pk),
            "context_json": json.dumps(context, sort_keys=True),
            "reasons": REASONS,
            "environment": environment,
            "environments": environments,
        },
        section="features",
    )
