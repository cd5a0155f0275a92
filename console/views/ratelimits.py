"""The rate-limit counters page: live identities, top limited, resets, form-throttle lookup."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from console.forms import (
    IdentityTargetForm,
    RateLimitFilterForm,
    ReasonForm,
    TenantTargetForm,
    ThrottleLookupForm,
)
from console.views.common import (
    STORAGE_ERRORS,
    history_context,
    invalid_target,
    ops_page,
    render_ops,
    require_operate,
    storage_failure,
)
from resilience.health.selectors import redis_failure_since
from resilience.history.charts import ratelimit_charts
from resilience.ratelimit import selectors as ratelimit_selectors
from resilience.ratelimit import services as ratelimit_services
from tenants.models import Tenant

PAGE_SIZE = 50


def _state_row(state) -> dict:
    return dataclasses.asdict(state)


def _ratelimits_url(**query) -> str:
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{reverse('ops:ratelimits')}?{urlencode(query)}" if query else reverse("ops:ratelimits")


@ops_page
def ratelimits(request):
    """Live rate-limit identities from the limiter's index, filtered and paged by ZSCAN cursor."""
    form = RateLimitFilterForm(request.GET)
    clean = form.cleaned_data if form.is_valid() else {}
    tenant, scope, text = clean.get("tenant") or None, clean.get("scope") or None, clean.get("q") or ""
    cursor, count = clean.get("cursor") or 0, clean.get("count") or PAGE_SIZE
    lookup = ThrottleLookupForm(request.GET) if ("ip" in request.GET or "username" in request.GET) else None
    context: dict = {"title": "Rate-limit counters", "form": form, "lookup": lookup or ThrottleLookupForm()}
    context.update(tenant=tenant, scope=scope, text=text, failure=None, states=[], top=None, throttle=None)
    data: dict = {"filters": {"tenant": tenant, "scope": scope, "q": text, "cursor": cursor, "count": count}}
    try:
        if not form.errors:
            states, next_cursor = ratelimit_selectors.limited_identities(
                tenant=tenant, scope=scope, text=text, cursor=cursor, count=count
            )
            context.update(states=states, next_cursor=next_cursor, cursor=cursor)
            data.update(identities=[_state_row(s) for s in states], next_cursor=next_cursor)
            if tenant:
                top = ratelimit_selectors.top_limited(tenant=tenant, n=10)
                context["top"] = top
                data["top_limited"] = [_state_row(s) for s in top]
        if lookup is not None and lookup.is_valid():
            throttle = ratelimit_selectors.form_throttle_usage(
                ip=lookup.cleaned_data["ip"] or None, username=lookup.cleaned_data["username"] or None
            )
            context["throttle"] = data["form_throttles"] = throttle
        redis_failure_since(failed=False)
    except STORAGE_ERRORS as exc:
        context["failure"] = data["failure"] = storage_failure(exc)
    errors = {**form.errors.get_json_data(), **(lookup.errors.get_json_data() if lookup is not None else {})}
    if errors:
        data["errors"] = errors
    query = {"tenant": tenant, "scope": scope, "q": text, "count": clean.get("count")}
    if context.get("next_cursor"):
        context["next_url"] = _ratelimits_url(**query, cursor=context["next_cursor"])
    if cursor:
        context["first_url"] = _ratelimits_url(**query)
    status = 503 if context["failure"] else (400 if errors else 200)
    history, data["history"] = history_context("ratelimit", ratelimit_charts)
    context.update(history)
    return render_ops(request, "ratelimits", context, data, json_status=status)


def _tenant_object(label: str):
    return Tenant.objects.filter(slug=label).first() if label != "-" else None


@ops_page
def ratelimit_reset(request):
    """Confirm with a reason, then give one identity its full allowance back (audited)."""
    require_operate(request)
    target = IdentityTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return invalid_target(request, target, reverse("ops:ratelimits"))
    scope, label, identity = (target.cleaned_data[k] for k in ("scope", "tenant", "identity"))
    back = _ratelimits_url(tenant=label, scope=scope)
    try:
        state = ratelimit_selectors.identity_state(scope, label, identity)
    except STORAGE_ERRORS as exc:
        messages.error(request, f"Could not read the limiter: {storage_failure(exc)['error']}")
        return redirect(back)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            had_state = ratelimit_services.ratelimit_reset_identity(
                scope=scope,
                tenant=_tenant_object(label) or label,
                identity=identity,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was reset: {storage_failure(exc)['error']}")
        else:
            verb = "Reset" if had_state else "Nothing to reset for"
            messages.success(request, f"{verb} {scope} {identity} (tenant {label}).")
        return redirect(back)
    context = {
        **admin.site.each_context(request),
        "title": "Reset a rate-limit identity",
        "back_url": back,
        "back_label": "Rate-limit counters",
        "scope": scope,
        "tenant_label": label,
        "identity": identity,
        "state": state,
        "form": form,
    }
    return render(request, "admin/ops/ratelimit_reset.html", context)


@ops_page
def ratelimit_reset_tenant(request):
    """Confirm with a reason, then reset every identity of a tenant (audited)."""
    require_operate(request)
    target = TenantTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return invalid_target(request, target, reverse("ops:ratelimits"))
    label = target.cleaned_data["tenant"]
    back = _ratelimits_url(tenant=label)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            reset = ratelimit_services.ratelimit_reset_tenant(
                tenant=_tenant_object(label) or label,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was reset: {storage_failure(exc)['error']}")
        else:
            messages.success(request, f"Reset {reset} identit{'y' if reset == 1 else 'ies'} of tenant {label}.")
        return redirect(back)
    context = {
        **admin.site.each_context(request),
        "title": "Reset every identity of a tenant",
        "back_url": back,
        "back_label": "Rate-limit counters",
        "tenant_label": label,
        "form": form,
    }
    return render(request, "admin/ops/ratelimit_reset_tenant.html", context)
