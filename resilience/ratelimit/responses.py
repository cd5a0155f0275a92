"""HTTP answers of the limiter."""

from __future__ import annotations

from django.http import JsonResponse

from resilience.ratelimit.limiter import Decision


def ratelimit_response(decision: Decision) -> JsonResponse:
    """Return the 429 JSON answer (503 when the limiter is down and fails closed) with RateLimit-* headers."""
    if decision.degraded:
        body = {
            "error": "rate_limiter_unavailable",
            "detail": "The rate limiter cannot reach its store and RATE_LIMIT_FAIL_MODE=closed; retry shortly.",
            "retry_after": max(1, round(decision.retry_after)),
        }
        status = 503
    else:
        body = {
            "error": "rate_limited",
            "detail": f"Too many requests: {decision.limit} per {decision.window:g}s allowed. Retry later.",
            "limit": decision.limit,
            "remaining": 0,
            "retry_after": max(1, round(decision.retry_after + 0.4999)),
        }
        status = 429
    response = JsonResponse(body, status=status)
    for name, value in decision.headers().items():
        response[name] = value
    return response
