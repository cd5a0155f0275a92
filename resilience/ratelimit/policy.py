"""Who a request is (per scope) and which limits apply to it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from agentapi_admin.client_address import client_ip_identity
from resilience.exceptions import DATABASE_UNAVAILABLE_ERRORS, REDIS_UNAVAILABLE_ERRORS

# Who is signed in needs the session (Redis) and the user row (the database).
_SESSION_STORE_ERRORS = (*REDIS_UNAVAILABLE_ERRORS, *DATABASE_UNAVAILABLE_ERRORS)


@dataclass(frozen=True)
class Limits:
    """Requests per window and the burst allowance on top."""

    per_minute: int
    burst: int
    window: float = 60


def limits_for(tenant=None) -> Limits:
    """Return the tenant's plan limits, each falling back to RATE_LIMIT_REQUESTS_PER_MINUTE / _BURST_SIZE."""
    plan = getattr(tenant, "plan", None)
    per_minute = getattr(plan, "rate_limit_per_minute", None)
    burst = getattr(plan, "burst", None)
    return Limits(
        per_minute=per_minute if per_minute else settings.RESILIENCE_RATE_LIMIT_PER_MINUTE,
        burst=burst if burst is not None else settings.RESILIENCE_RATE_LIMIT_BURST,
    )


def request_tenant(request):
    """Return the tenant the request acts for (set by API-key authentication), or None."""
    return getattr(request, "tenant", None)


def request_user_identity(request) -> str | None:
    """Return the user (or API key) identity of the request, or None when anonymous."""
    api_key = getattr(request, "api_key", None)
    if api_key is not None and getattr(api_key, "prefix", None):
        return f"key-{api_key.prefix}"
    user = getattr(request, "user", None)
    try:
        authenticated = user is not None and user.is_authenticated
    except _SESSION_STORE_ERRORS:
        # The session store (Redis) or the database is down: limit by IP only rather than fail
        # here, in a middleware, where no 503 page can be chosen; the view says what failed.
        return None
    return str(user.pk) if user is not None and authenticated else None


def request_checks(request, scopes=("ip", "user", "tenant"), tenant=None) -> list[tuple[str, object, str]]:
    """Return the (scope, tenant, identity) triples a request counts against."""
    tenant = tenant if tenant is not None else request_tenant(request)
    checks = []
    for scope in scopes:
        if scope == "ip":
            checks.append(("ip", tenant, client_ip_identity(request)))
        elif scope == "user":
            identity = request_user_identity(request)
            if identity is not None:
                checks.append(("user", tenant, identity))
        elif scope == "tenant" and tenant is not None:
            checks.append(("tenant", tenant, getattr(tenant, "slug", str(tenant))))
    return checks
