"""Rate-limit middleware for the service API (paths in RATE_LIMIT_PATHS)."""

from __future__ import annotations

from django.conf import settings

from resilience.ratelimit.enforce import add_headers, ratelimit_enforce

# Requests carrying a tenant API key are limited per IP (same key, same limits) and per
# tenant inside the service API's one-round-trip script (tenants/api/gateway.py);
# counting them here too would double the IP count and add a Redis round trip.
GATEWAY_BEARER = "Bearer aak_"


class RateLimitMiddleware:
    """Limit requests under RATE_LIMIT_PATHS per IP and per signed-in user; add RateLimit-* headers.

    Per-tenant limits need the tenant, which API-key authentication finds inside the
    view: handlers call `ratelimit_enforce(request, scopes=("tenant",), tenant=...)`
    or use the `rate_limited` decorator, and the headers of the tightest decision win.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.RESILIENCE_RATE_LIMIT_ENABLED
            and request.path_info.startswith(tuple(settings.RESILIENCE_RATE_LIMIT_PATHS))
            and not request.META.get("HTTP_AUTHORIZATION", "").startswith(GATEWAY_BEARER)
        ):
            denied = ratelimit_enforce(request, scopes=("ip", "user"))
            if denied is not None:
                return denied
        return add_headers(request, self.get_response(request))
