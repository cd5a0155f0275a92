"""Rate-limit middleware for the service API (paths in RATE_LIMIT_PATHS)."""

from __future__ import annotations

from django.conf import settings

from agentapi_admin.problems import as_problem
from resilience.ratelimit.enforce import add_headers, ratelimit_enforce

# A view marked with this attribute decides its own limits (the service API's gateway:
# per tenant for a valid key, per IP otherwise). The mark is on the resolved view, never
# on anything the client sends, so no header can lift a limit.
LIMITS_ITSELF = "ratelimit_limits_itself"


def limits_itself(view, methods=("GET",)):
    """Mark a view that applies every limit itself for `methods`, so the middleware does not count it twice."""
    setattr(view, LIMITS_ITSELF, frozenset(methods))
    return view


class RateLimitMiddleware:
    """Limit requests under RATE_LIMIT_PATHS per IP and per signed-in user; add RateLimit-* headers.

    The decision is taken once the URL is resolved (process_view), so views that limit
    themselves are skipped by what they are, not by what the request claims. A path that
    resolves to no view is counted after the fact: its 404 becomes a 429 when over budget.
    Per-tenant limits need the tenant, which API-key authentication finds inside the
    view: handlers call `ratelimit_enforce(request, scopes=("tenant",), tenant=...)`
    or use the `rate_limited` decorator, and the headers of the tightest decision win.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        limited = settings.RESILIENCE_RATE_LIMIT_ENABLED and request.path_info.startswith(
            tuple(settings.RESILIENCE_RATE_LIMIT_PATHS)
        )
        request._ratelimit_pending = limited
        response = self.get_response(request)
        if limited and request._ratelimit_pending:
            # No view was reached (an unresolved path, or a middleware answered first).
            denied = ratelimit_enforce(request, scopes=("ip", "user"))
            if denied is not None:
                return _api_problem(request, denied)
        return add_headers(request, response)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(request, "_ratelimit_pending", False):
            return None
        request._ratelimit_pending = False
        if request.method in getattr(view_func, LIMITS_ITSELF, ()):
            return None
        denied = ratelimit_enforce(request, scopes=("ip", "user"))
        return None if denied is None else _api_problem(request, denied)


def _api_problem(request, denied):
    """Answer API paths with an RFC 9457 problem, as every API error is; other paths keep plain JSON."""
    return as_problem(denied) if request.path_info.startswith("/api/") else denied
