"""What every ops page shares: staff-only access, the operate permission, HTML / live region / JSON twin."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from console.models import OPERATE_PERMISSION
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.health.selectors import redis_failure_since
from resilience.history.selectors import history_series

# What a page catches when Redis (or the storage behind it) fails, to say so instead of a 500.
STORAGE_ERRORS = REDIS_UNAVAILABLE_ERRORS
SEARCH_LIMIT = 20


def wants_json(request) -> bool:
    return request.GET.get("format") == "json"


def ops_page(view):
    """Admit active staff only: others get the admin login (HTML) or a 403 JSON body (JSON twin)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if not (user.is_active and user.is_staff):
            if wants_json(request):
                return JsonResponse({"error": "Staff login required.", "login": reverse("admin:login")}, status=403)
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return never_cache(csrf_protect(wrapped))


def require_operate(request) -> None:
    """Refuse an action to staff without the console.operate permission."""
    if not request.user.has_perm(OPERATE_PERMISSION):
        raise PermissionDenied("Acting from the ops pages needs the 'Can act from the ops pages' permission.")


def render_ops(request, page: str, context: dict, data: dict, *, json_status: int = 200):
    """Render the page, its live region alone (htmx poll) or its JSON twin."""
    if wants_json(request):
        return JsonResponse(data, status=json_status, json_dumps_params={"indent": 1})
    context = {
        **admin.site.each_context(request),
        "page": page,
        "live_template": f"admin/ops/{page}_live.html",
        "refresh_seconds": settings.RESILIENCE_OPS_REFRESH_SECONDS,
        "now": timezone.now(),
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "json_url": _with_format_json(request),
        **context,
    }
    if request.headers.get("HX-Request"):
        return render(request, "admin/ops/live.html", context)
    return render(request, f"admin/ops/{page}.html", context)


def _with_format_json(request) -> str:
    query = request.GET.copy()
    query["format"] = "json"
    return f"{request.path}?{query.urlencode()}"


def history_context(series: str, charts) -> tuple[dict, dict]:
    """Return (template context, JSON) for a page's history: the series and its charts."""
    history = history_series(series)
    context = {
        "history": history,
        "charts": charts(history),
        "history_interval": int(settings.RESILIENCE_HISTORY_INTERVAL),
    }
    return context, history


def storage_failure(exc: BaseException) -> dict:
    """Describe a storage failure for a page: what failed and since when."""
    return {"error": f"{type(exc).__name__}: {exc}", "failing_since": redis_failure_since(failed=True)}


def invalid_target(request, form, back: str):
    messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
    return redirect(back)
