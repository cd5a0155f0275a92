"""The request log line: request id in and out, the request's log context, one line and the HTTP metrics.

`RequestLogMiddleware` runs first: it takes the request id from a well-formed
`X-Request-ID` (else generates one), echoes it in the response, binds it (and later
the route and tenant) to every record logged while the request runs, writes one
line per request and feeds the HTTP metrics. Formatting: `agentapi_admin.logformat`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.urls import Resolver404, resolve

from agentapi_admin import metrics
from agentapi_admin.logformat import request_id_var, route_var, tenant_id_var, tenant_var

# Printable, no spaces, quotes or underscores (so an API key, aak_..., is never taken for one), bounded.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:/+=-]{7,127}")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
request_logger = logging.getLogger("agentapi.request")


def _route(request, status: int) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None and status != 404:
        # A middleware answered before URL resolution (a 429, a redirect): name the route it guarded.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
    if match is None:
        return metrics.UNMATCHED_ROUTE
    return "/" + str(match.route) if match.route else (match.view_name or metrics.UNMATCHED_ROUTE)


class RequestLogMiddleware:
    """Request id in and out, one log line and the HTTP metrics per request."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if REQUEST_ID_PATTERN.fullmatch(supplied) else uuid.uuid4().hex
        tokens = (
            request_id_var.set(request_id),
            tenant_var.set(""),
            tenant_id_var.set(""),
            route_var.set(""),
        )
        request.request_id = request_id
        try:
            response = self.get_response(request)
            route = _route(request, response.status_code)
            route_var.set(route)
            if not tenant_var.get():  # portal pages name their tenant in the URL (access checked by the view)
                slug = getattr(getattr(request, "resolver_match", None), "kwargs", {}).get("tenant")
                if isinstance(slug, str):
                    tenant_var.set(slug)
            seconds = time.perf_counter() - started
            response["X-Request-ID"] = request_id
            metrics.http_observe(route, request.method, response.status_code, seconds)
            self._log(request, response, route, seconds)
            # This line replaces django.request's "Too Many Requests" / "Service Unavailable" line:
            # one line per refused request. Django honours the flag it sets itself; an uncaught
            # exception's traceback was already logged inside the chain, before this point.
            response._has_been_logged = True
            return response
        finally:
            for var, token in zip((request_id_var, tenant_var, tenant_id_var, route_var), tokens, strict=True):
                var.reset(token)

    @staticmethod
    def _log(request, response, route: str, seconds: float) -> None:
        status = response.status_code
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        if request.path in QUIET_PATHS and status < 500:
            level = logging.DEBUG
        if not request_logger.isEnabledFor(level):
            return
        request_logger.log(
            level,
            "%s %s %s",
            request.method,
            route,
            status,
            extra={"method": request.method, "status": status, "duration_ms": round(seconds * 1000, 2)},
        )
