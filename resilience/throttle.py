"""Throttles for sign-in and other sensitive forms: failed attempts per IP and per account.

They run on the project's own limiter (GCRA, scope `form`, docs/rate-limiting.md), so
the counters are listed on the rate-limit counters page and reset there like any other
identity, and RATE_LIMIT_FAIL_MODE decides when the limiter cannot be asked. A
submission reserves one unit of each budget before the view runs (so parallel guesses
cannot slip past a check) and a submission the view accepts (it redirects) gets its
units back: only failures count. The account budget is keyed on the username exactly as
authentication sees it, so every spelling that signs in as one account shares one budget.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UsernameField
from django.template.response import TemplateResponse

from agentapi_admin import metrics
from agentapi_admin.client_address import client_ip_identity
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.ratelimit.limiter import default_limiter
from resilience.ratelimit.selectors import identity_state

SCOPE = "form"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_ACCEPTED = (301, 302, 303)


def _rate(kind: str) -> str:
    return settings.RESILIENCE_FORM_RATE_IP if kind == "ip" else settings.RESILIENCE_FORM_RATE_USERNAME


def rate_limits(rate: str) -> tuple[int, int, int]:
    """Return (limit, burst, window seconds) for a rate `N/[k]unit`: N at once, refilled at N per window."""
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"{rate!r} is not a rate: expected N/[k]unit, e.g. 5/m or 20/10m")
    count, multiplier, unit = match.groups()
    return int(count), int(count) - 1, int(multiplier or 1) * _UNITS[unit]


def username_key(raw: str) -> str:
    """Return the account a submitted username signs in as, for throttling: Django's cleaning, folded.

    `AuthenticationForm` strips the value and NFKC-normalises it, and ModelBackend looks the
    result up; case folding on top makes spellings that differ only in case share a budget too.
    """
    cleaned = UsernameField().to_python(raw) or ""
    normalised = get_user_model().normalize_username(cleaned)
    return unicodedata.normalize("NFKC", normalised.casefold())


def identity(group: str, kind: str, value: str) -> str:
    """Return the limiter identity of one throttle counter (`<group>:ip:<address>`, `<group>:user:<account>`)."""
    return f"{group}:{'ip' if kind == 'ip' else 'user'}:{value}"


def _username(request, field: str) -> str:
    # Sign-in forms name the account in the POST; password forms act for the signed-in user.
    submitted = username_key(request.POST.get(field, ""))
    if submitted:
        return submitted
    user = getattr(request, "user", None)
    try:
        return username_key(user.get_username()) if user is not None and user.is_authenticated else ""
    except REDIS_UNAVAILABLE_ERRORS:  # the session store is down: throttle by IP only
        return ""


@dataclass(frozen=True)
class ThrottleResult:
    """The outcome of one throttled submission; `checks` is what was reserved (refunded on success)."""

    limited: bool
    unavailable: bool = False
    by_username: bool = False
    retry_after: int = 0
    checks: tuple = ()


def _checks(request, group: str, username_field: str) -> list[tuple]:
    values = [("ip", client_ip_identity(request))]
    username = _username(request, username_field)
    if username:
        values.append(("username", username))
    checks = []
    for kind, value in values:
        limit, burst, window = rate_limits(_rate(kind))
        checks.append((SCOPE, None, identity(group, kind, value), limit, burst, window, 1))
    return checks


def form_throttle_hit(request, *, group: str = "login", username_field: str = "username") -> ThrottleResult:
    """Reserve one attempt per IP and per account; decide by RATE_LIMIT_FAIL_MODE when the limiter is away."""
    checks = _checks(request, group, username_field)
    decisions = default_limiter().hit_many(checks)
    for check, decision in zip(checks, decisions, strict=True):
        if decision.allowed:
            continue
        if decision.degraded:
            return ThrottleResult(limited=True, unavailable=True, retry_after=30)
        # What the refused check took nothing; give the others back so a refusal costs nothing more.
        default_limiter().refund_many([c for c, d in zip(checks, decisions, strict=True) if d.allowed and c != check])
        return ThrottleResult(
            limited=True, by_username=":user:" in check[2], retry_after=max(1, math.ceil(decision.retry_after))
        )
    counted = tuple(c for c, d in zip(checks, decisions, strict=True) if not d.degraded)
    return ThrottleResult(limited=False, checks=counted)


def form_throttle_accepted(result: ThrottleResult) -> None:
    """Give back the attempt a submission reserved: the form accepted it, so it is not a failure."""
    if result.checks:
        default_limiter().refund_many(list(result.checks))


def throttled_response(request, result: ThrottleResult) -> TemplateResponse:
    """Render the friendly 429 page (503 when the limiter is down and the fail mode is closed)."""
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
    """Throttle failed POSTs to a form view per IP and per account, answering a 429 page."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method != "POST" or not settings.RESILIENCE_RATE_LIMIT_ENABLED:
                return view(request, *args, **kwargs)
            result = form_throttle_hit(request, group=group, username_field=username_field)
            if result.limited:
                metrics.form_throttle_refusal(group, result)
                return throttled_response(request, result)
            response = view(request, *args, **kwargs)
            # A form that accepts a POST redirects; anything else (errors shown again, 403) is a failure.
            if response.status_code in _ACCEPTED:
                form_throttle_accepted(result)
            return response

        return wrapped

    return decorator


def throttle_login(view):
    """Throttle a sign-in view (admin and portal share the counters, so splitting attempts gains nothing)."""
    return throttle_form("login")(view)


def form_throttle_lookup(*, group: str = "login", ip: str | None = None, username: str | None = None) -> dict:
    """Return {"ip": usage, "username": usage} for the given values; usage None when nothing is counted."""
    found: dict[str, dict | None] = {}
    for kind, value in (("ip", ip), ("username", username_key(username or "") or None)):
        if value is None:
            continue
        state = identity_state(SCOPE, None, identity(group, kind, value))
        if state is None:
            found[kind] = None
            continue
        found[kind] = {
            "identity": state.identity,
            "count": state.used,
            "limit": state.burst + 1,
            "remaining": state.remaining,
            "time_left": round(state.reset_after),
            "retry_after": state.retry_after,
            "should_limit": state.limited,
            "rate": _rate(kind),
        }
    return found
