"""django-ratelimit throttles for sign-in and other sensitive forms, per IP and per username.

Why not `@ratelimit(...)` directly: it answers 403 (a PermissionDenied), and with
django-redis a Redis outage raises from `cache.add()` before RATELIMIT_FAIL_OPEN is
ever consulted (jsocol/django-ratelimit#333), turning every sign-in into a 500. Here
the check is wrapped: any error, or a count that comes back empty, is decided by
RATE_LIMIT_FAIL_MODE, and a limited request gets a friendly 429 page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import wraps

import redis
from django.conf import settings
from django.template.response import TemplateResponse
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted

from agentapi_admin import metrics
from resilience.ratelimit.policy import client_ip

logger = logging.getLogger(__name__)

_METHODS = ["POST"]
_STORE_ERRORS = (ConnectionInterrupted, redis.exceptions.RedisError, OSError)


@dataclass(frozen=True)
class _Probe:
    """The request-shaped object get_usage needs to read a counter without a request."""

    method: str = "POST"


def _rates() -> dict[str, str]:
    return {"ip": settings.RESILIENCE_FORM_RATE_IP, "username": settings.RESILIENCE_FORM_RATE_USERNAME}


def _usage(group: str, kind: str, value: str, *, request=None, increment: bool):
    """Return django-ratelimit's usage dict for one counter; raise the store's error unchanged."""
    return get_usage(
        request or _Probe(),
        group=f"{group}:{kind}",
        key=lambda _group, _request: value,
        rate=_rates()[kind],
        method=_METHODS,
        increment=increment,
    )


def _username(request, field: str) -> str:
    # Sign-in forms name the account in the POST; password and API-key forms act for the signed-in user.
    submitted = request.POST.get(field, "").strip().lower()
    if submitted:
        return submitted
    user = getattr(request, "user", None)
    try:
        return user.get_username().lower() if user is not None and user.is_authenticated else ""
    except _STORE_ERRORS:
        return ""


@dataclass(frozen=True)
class ThrottleResult:
    """The outcome of one throttled submission."""

    limited: bool
    unavailable: bool = False
    by_username: bool = False
    retry_after: int = 0


def form_throttle_hit(request, *, group: str = "login", username_field: str = "username") -> ThrottleResult:
    """Count a form submission per IP and per username; decide by RATE_LIMIT_FAIL_MODE when the store fails."""
    counters = [("ip", client_ip(request))]
    username = _username(request, username_field)
    if username:
        counters.append(("username", username))
    for kind, value in counters:
        try:
            usage = _usage(group, kind, value, request=request, increment=True)
        except _STORE_ERRORS as exc:
            logger.warning("form throttle cannot reach its store (%s); RATE_LIMIT_FAIL_MODE=%s", exc, _fail_mode())
            usage = {"limit": 0, "should_limit": True, "time_left": -1}
        if usage is None:  # RATELIMIT_ENABLE=false, or the store failed and RATELIMIT_FAIL_OPEN
            continue
        if usage["limit"] == 0:  # the store failed: django-ratelimit's fail-closed marker, or ours above
            if _fail_mode() == "open":
                continue
            return ThrottleResult(limited=True, unavailable=True, retry_after=30)
        if usage["should_limit"]:
            return ThrottleResult(limited=True, by_username=kind == "username", retry_after=max(1, usage["time_left"]))
    return ThrottleResult(limited=False)


def _fail_mode() -> str:
    return settings.RESILIENCE_RATE_LIMIT_FAIL_MODE


def throttled_response(request, result: ThrottleResult) -> TemplateResponse:
    """Render the friendly 429 page (503 when the throttle store is down and the fail mode is closed)."""
    response = TemplateResponse(
        request,
        "resilience/throttled.html",
        {
            "retry_after": result.retry_after,
            "by_username": result.by_username,
            "unavailable": result.unavailable,
            "back_url": request.get_full_path(),
        },
        status=503 if result.unavailable else 429,
    )
    response["Retry-After"] = str(result.retry_after)
    return response


def throttle_form(group: str, *, username_field: str = "username"):
    """Throttle POSTs to a form view per IP and per username (django-ratelimit), answering a 429 page."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "POST" and settings.RESILIENCE_RATE_LIMIT_ENABLED:
                result = form_throttle_hit(request, group=group, username_field=username_field)
                if result.limited:
                    metrics.form_throttle_refusal(group, result)
                    return throttled_response(request, result)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def throttle_login(view):
    """Throttle a sign-in view (admin and portal share the counters, so splitting attempts gains nothing)."""
    return throttle_form("login")(view)


def form_throttle_lookup(*, group: str = "login", ip: str | None = None, username: str | None = None) -> dict:
    """Return {"ip": usage, "username": usage} for the given values (usage None when unknown or unavailable)."""
    found = {}
    for kind, value in (("ip", ip), ("username", (username or "").strip().lower() or None)):
        if value is None:
            continue
        try:
            usage = _usage(group, kind, value, increment=False)
        except _STORE_ERRORS:
            usage = None
        if usage is not None and usage["limit"]:
            usage = usage | {"remaining": max(0, usage["limit"] - usage["count"]), "rate": _rates()[kind]}
        else:
            usage = None
        found[kind] = usage
    return found
