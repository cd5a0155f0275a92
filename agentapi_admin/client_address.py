"""Who sent a request: the client's address, behind as many proxies as RATE_LIMIT_TRUSTED_PROXIES trusts.

The one place that reads REMOTE_ADDR and X-Forwarded-For for the client: the audit
trail and the session list record `client_ip()`, the rate limiter counts
`client_ip_identity()`. (/metrics checks the direct peer instead, on purpose.)
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


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


def client_ip_identity(request) -> str:
    """Return the client address per RATE_LIMIT_TRUSTED_PROXIES (IPv6 grouped by /64, one host's usual share)."""
    chosen = client_address(request)
    if chosen is None:
        return "unknown"
    if chosen.version == 6:
        return str(ipaddress.ip_network(f"{chosen}/64", strict=False).network_address) + "/64"
    return str(chosen)


def client_ip(request) -> str | None:
    """Return the exact client address (trusted proxies resolved) for the audit trail and sessions, or None."""
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
