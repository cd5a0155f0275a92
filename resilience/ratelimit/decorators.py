"""View decorator applying the limiter."""

from __future__ import annotations

from functools import wraps

from resilience.ratelimit.enforce import DEFAULT_SCOPES, add_headers, ratelimit_enforce


def rate_limited(scopes=DEFAULT_SCOPES, *, cost: int = 1):
    """Limit a view per scope (ip, user, tenant from `request.tenant`); answer 429 JSON with RateLimit-* headers."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            denied = ratelimit_enforce(request, scopes=scopes, cost=cost)
            if denied is not None:
                return denied
            return add_headers(request, view(request, *args, **kwargs))

        return wrapped

    return decorator
