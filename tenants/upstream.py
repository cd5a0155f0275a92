"""Probe a tenant's AgentAPI upstream (`GET <upstream_url>/status`) through the tenant's breaker.

The request goes through `resilience.outbound`: the decrypted credential is sent to the
configured origin only, since no redirect is followed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pybreaker import CircuitBreakerError

from resilience.breakers.registry import breaker
from resilience.outbound import DEFAULT_TIMEOUT, OutboundFailure, outbound_request, outbound_url_check
from tenants.crypto import decrypt

MAX_BODY_BYTES = 64 * 1024


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
    return {"Authorization": f"Bearer {decrypt(token)}"}


def _get_status(url: str, headers: dict, timeout: float) -> tuple[int | None, dict | None, str]:
    """Return (status, JSON body, error); raise UpstreamUnavailable only when the upstream did not answer."""
    try:
        response = outbound_request(
            url, headers={"Accept": "application/json", **headers}, timeout=timeout, max_bytes=MAX_BODY_BYTES
        )
    except OutboundFailure as exc:
        if exc.is_outage:
            raise UpstreamUnavailable(exc.message) from exc
        # Refused URL, redirect, oversized answer: a misconfiguration, not an outage.
        return exc.status, None, exc.message
    if response.status >= 500:
        raise UpstreamUnavailable(f"HTTP {response.status}")
    if response.truncated:
        return response.status, None, f"The answer is larger than {MAX_BODY_BYTES} bytes; not read further."
    if response.status >= 400:
        return response.status, None, f"HTTP {response.status}"
    try:
        body = json.loads(response.excerpt) if response.excerpt else None
    except ValueError:
        body = None
    return response.status, body if isinstance(body, dict) else None, ""


def upstream_check(tenant, *, timeout: float = DEFAULT_TIMEOUT) -> UpstreamResult:
    """GET the tenant's <upstream_url>/status through its breaker and report the outcome (never raises)."""
    name = upstream_breaker_name(tenant)
    if not tenant.upstream_url:
        return UpstreamResult(False, None, 0.0, name, "n/a", error="No upstream URL is configured for this tenant.")
    url = tenant.upstream_url.rstrip("/") + "/status"
    try:
        outbound_url_check(url)
    except OutboundFailure as exc:  # refused before the breaker: nothing was called, nothing to count
        return UpstreamResult(False, None, 0.0, name, "n/a", error=exc.message)
    cb = breaker(name)
    try:
        headers = _credentials_header(tenant)
    except Exception as exc:  # a key rotated away or a corrupt token: report it, do not 500 the admin
        error = f"The upstream credentials cannot be decrypted ({type(exc).__name__}); set them again."
        return UpstreamResult(False, None, 0.0, name, cb.current_state, error=error)
    started = time.perf_counter()
    status, body, error = None, None, ""
    try:
        status, body, error = cb.call(_get_status, url, headers, timeout)
    except CircuitBreakerError as exc:
        cause = exc.__context__
        if isinstance(cause, UpstreamUnavailable):  # this very failure tripped the breaker
            error = f"{cause}; circuit opened after {cb.fail_max} consecutive failures"
        else:
            error = f"Circuit open: {exc}"
    except UpstreamUnavailable as exc:
        error = str(exc)
    latency = round((time.perf_counter() - started) * 1000, 2)
    ok = not error and status is not None and 200 <= status < 300
    return UpstreamResult(ok, status, latency, name, cb.current_state, error=error, body=body)
