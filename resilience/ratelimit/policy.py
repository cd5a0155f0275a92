"""Who a request is (per scope) and which limits apply to it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings

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


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_ip(request) -> str:
    """Return the client address per RATE_LIMIT_TRUSTED_PROXIES (IPv6 grouped by /64, one host's usual share)."""
    chosen = client_address(request)
    if chosen is None:
        return "unknown"
    if chosen.version == 6:
        return str(ipaddress.ip_network(f"{chosen}/64", strict=False).network_address) + "/64"
    return str(chosen)


def audit_ip(request) -> str | None:
    """Return the exact client address for the audit trail (trusted proxies resolved), or None."""
    chosen = client_address(request) if request is not None else None
    return str(chosen) if chosen is not None else None


def client_address(request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return the client's address: X-Forwarded-For is believed only as far as RATE_LIMIT_TRUSTED_PROXIES allows."""
    trusted = settings.RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES
    remote = _parse_ip(request.META.get("REMOTE_ADDR", "") or "")
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    chosen = remote
    if isinstance(trusted, int):
        # Each of the N proxies appends the address it saw; the Nth from the right is the client's.
        if trusted and len(forwarded) >= trusted:
            chosen = _parse_ip(forwarded[-trusted]) or remote
    elif remote is not None and _in(remote, trusted):
        # Walk right to left past our own proxies; the first outsider is the client.
        chosen = remote
        for part in reversed(forwarded):
            address = _parse_ip(part)
            if address is None:
                break
            chosen = address
            if not _in(address, trusted):
                break
    return chosen


def _in(address, networks: list[str]) -> bool:
    return any(address in ipaddress.ip_network(network) for network in networks)


def request_tenant(request):
    """Return the tenant the request acts for (set by API-key authentication), or None."""
    return getattr(request, "tenant", None)


def request_user_identity(request) -> str | None:
    """Return the user (or API key) identity of the request, or None when anonymous."""
    api_key = getattr(request, "api_key", None)
    if api_key is not None and getattr(api_key, "prefix", ""):
        return f"key-{api_key.prefix}"
    user = getattr(request, "user", None)
    try:
        authenticated = user is not None and user.is_authenticated
    except _SESSION_STORE_ERRORS:
        # The session store (Redis) or the database is down: limit by IP only rather than fail
        # here, in a middleware, where no 503 page can be chosen; the view says what failed.
        return None
    return str(user.pk) if authenticated else None


def request_checks(request, scopes=("ip", "user", "tenant"), tenant=None) -> list[tuple[str, object, str]]:
    """Return the (scope, tenant, identity) triples a request counts against."""
    tenant = tenant if tenant is not None else request_tenant(request)
    checks = []
    for scope in scopes:
        if scope == "ip":
            checks.append(("ip", tenant, client_ip(request)))
        elif scope == "user":
            identity = request_user_identity(request)
            if identity is not None:
                checks.append(("user", tenant, identity))
        elif scope == "tenant" and tenant is not None:
            checks.append(("tenant", tenant, getattr(tenant, "slug", str(tenant))))
    return checks
