"""The circuit breakers page: states, transitions, force open / close / reset."""

from __future__ import annotations

import dataclasses
import json

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.shortcuts import redirect, render
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from console.forms import (
    BREAKER_ACTIONS,
    BreakerTargetForm,
    ReasonForm,
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
from resilience.breakers import selectors as breaker_selectors
from resilience.breakers import services as breaker_services
from resilience.breakers.registry import registered_breakers, storage_degraded
from resilience.history.charts import breaker_charts


def _breaker_row(state) -> dict:
    return dataclasses.asdict(state)


@ops_page
def breakers(request):
    """Every registered breaker with its counters, timings and recent transitions."""
    context: dict = {"title": "Circuit breakers", "failure": None, "breakers": [], "events": []}
    data: dict = {}
    try:
        states = breaker_selectors.breakers_snapshot()
        events = breaker_selectors.breaker_events(n=20)
        degraded = storage_degraded()
        context.update(breakers=states, events=events, degraded=degraded)
        data.update(
            storage_degraded=degraded,
            breakers=[_breaker_row(s) for s in states],
            events=[dataclasses.asdict(e) for e in events],
        )
    except STORAGE_ERRORS as exc:
        context["failure"] = data["failure"] = storage_failure(exc)
    history, data["history"] = history_context("breakers", breaker_charts)
    context.update(history)
    return render_ops(
        request,
        "breakers",
        context,
        json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
        json_status=503 if context["failure"] else 200,
    )


@ops_page
def breaker_action(request):
    """Confirm with a reason, then force a breaker open or closed, or reset it (audited)."""
    require_operate(request)
    target = BreakerTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return invalid_target(request, target, reverse("ops:breakers"))
    name, action = target.cleaned_data["name"], target.cleaned_data["action"]
    back = reverse("ops:breakers")
    if name not in registered_breakers():
        messages.error(request, f"No breaker named {name!r} (only named breakers can be forced from here).")
        return redirect(back)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        service = {
            "force_open": breaker_services.breaker_force_open,
            "force_close": breaker_services.breaker_force_close,
            "reset": breaker_services.breaker_reset,
        }[action]
        try:
            service(name=name, actor=request.user, reason=form.cleaned_data["reason"], ip=client_ip(request))
        except ValueError as exc:
            messages.error(request, str(exc))
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was changed: {storage_failure(exc)['error']}")
        else:
            messages.success(
                request,
                f"{BREAKER_ACTIONS[action]}: breaker {name} is now {breaker_selectors.breaker_state(name).state}.",
            )
        return redirect(back)
    try:
        state = breaker_selectors.breaker_state(name)
    except STORAGE_ERRORS:
        state = None
    context = {
        **admin.site.each_context(request),
        "title": f"{BREAKER_ACTIONS[action]} breaker {name}",
        "back_url": back,
        "back_label": "Circuit breakers",
        "name": name,
        "action": action,
        "action_label": BREAKER_ACTIONS[action],
        "state": state,
        "form": form,
    }
    return render(request, "admin/ops/breaker_action.html", context)
