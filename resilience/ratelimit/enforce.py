"""Apply the limiter to a request: the one place the middleware, the decorator and API handlers share."""

from __future__ import annotations

from django.conf import settings

from agentapi_admin import metrics
from resilience.ratelimit.limiter import Decision, default_limiter, most_restrictive
from resilience.ratelimit.policy import limits_for, request_checks
from resilience.ratelimit.responses import ratelimit_response

DEFAULT_SCOPES = ("ip", "user", "tenant")


def ratelimit_enforce(request, *, scopes=DEFAULT_SCOPES, tenant=None, cost: int = 1):
    """Count the request against each scope; return the 429/503 response to send, or None to proceed.

    The decision reported in headers is kept on `request.ratelimit`; the middleware
    copies its RateLimit-* headers onto the final response.
    """
    if not settings.RESILIENCE_RATE_LIMIT_ENABLED:
        return None
    checks = request_checks(request, scopes, tenant)
    if not checks:
        return None
    limits = limits_for(tenant if tenant is not None else getattr(request, "tenant", None))
    decisions = default_limiter().hit_many(
        [
            (scope, owner, identity, limits.per_minute, limits.burst, limits.window, cost)
            for scope, owner, identity in checks
        ]
    )
    metrics.limiter_decisions([check[0] for check in checks], decisions)
    decision = most_restrictive(decisions)
    if decision is None:  # not reached: hit_many() decides each of the (non-empty) checks
        return None
    request.ratelimit = _tighter(getattr(request, "ratelimit", None), decision)
    if decision.allowed:
        return None
    return ratelimit_response(decision)


def _tighter(old: Decision | None, new: Decision) -> Decision | None:
    return new if old is None else most_restrictive([old, new])


def add_headers(request, response):
    """Copy the request's rate-limit headers onto the response (unless the view set its own)."""
    decision = getattr(request, "ratelimit", None)
    if decision is not None:
        for name, value in decision.headers().items():
            if name not in response:
                response[name] = value
    return response
