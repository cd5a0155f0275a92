"""Probe a tenant's AgentAPI upstream (`GET <upstream_url>/status`) through the tenant's breaker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from pybreaker import CircuitBreakerError

from resilience.breakers.registry import breaker

DEFAULT_TIMEOUT = 5.0


class UpstreamUnavailable(Exception):
    """The upstream did not answer, or answered 5xx: counts as a breaker failure."""


@dataclass(frozen=True)
class UpstreamResult:
    """The outcome of one probe."""

    ok: bool
    status_code: int | None
    latency_ms: float
    breaker: str
    breaker_state: str
    error: str = ""
    body: dict | None = None


def upstream_breaker_name(tenant) -> str:
    return f"upstream.{tenant.slug}"


def _credentials_header(tenant) -> dict:
    token = getattr(tenant, "upstream_credentials", "")
    if not token:
        return {}
    try:
        from tenants.crypto import decrypt  # provided by the tenants app (issue 3)
    except ImportError:
        return {}
    return {"Authorization": f"Bearer {decrypt(token)}"}


def _get_status(url: str, headers: dict, timeout: float) -> tuple[int, dict | None]:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})  # noqa: S310 - http(s) only, validated by URLField
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise UpstreamUnavailable(f"HTTP {exc.code}") from exc
        return exc.code, None  # a 4xx is a misconfiguration, not an outage: it does not trip the breaker
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UpstreamUnavailable(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return status, body if isinstance(body, dict) else None


def upstream_check(tenant, *, timeout: float = DEFAULT_TIMEOUT) -> UpstreamResult:
    """GET the tenant's <upstream_url>/status through its breaker and report the outcome (never raises)."""
    name = upstream_breaker_name(tenant)
    if not tenant.upstream_url:
        return UpstreamResult(False, None, 0.0, name, "n/a", error="No upstream URL is configured for this tenant.")
    cb = breaker(name)
    url = tenant.upstream_url.rstrip("/") + "/status"
    try:
        headers = _credentials_header(tenant)
    except Exception as exc:  # a key rotated away or a corrupt token: report it, do not 500 the admin
        error = f"The upstream credentials cannot be decrypted ({type(exc).__name__}); set them again."
        return UpstreamResult(False, None, 0.0, name, cb.current_state, error=error)
    started = time.perf_counter()
    status, body, error = None, None, ""
    try:
        status, body = cb.call(_get_status, url, headers, timeout)
    except CircuitBreakerError as exc:
        cause = exc.__context__
        if isinstance(cause, UpstreamUnavailable):  # this very failure tripped the breaker
            error = f"{cause}; circuit opened after {cb.fail_max} consecutive failures"
        else:
            error = f"Circuit open: {exc}"
    except UpstreamUnavailable as exc:
        error = str(exc)
    latency = round((time.perf_counter() - started) * 1000, 2)
    ok = status is not None and 200 <= status < 300
    if status is not None and not ok:
        error = f"HTTP {status}"
    return UpstreamResult(ok, status, latency, name, cb.current_state, error=error, body=body)
