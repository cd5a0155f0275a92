"""Structured logs: the request context every record carries, the JSON formatter and the request log line.

`RequestLogMiddleware` runs first: it takes the request id from a well-formed
`X-Request-ID` (else generates one), echoes it in the response, binds it (and later
the route and tenant) to every record logged while the request runs, writes one
line per request and feeds the HTTP metrics. With `LOG_FORMAT=json` each record is
one JSON object per line; only the fields listed in `JSON_FIELDS` are written,
never a record's arguments or attached request, so no header or form value can
leak into the log by way of a library's record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from django.urls import Resolver404, resolve

from agentapi_admin import metrics

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")
tenant_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant_id", default="")
route_var: contextvars.ContextVar[str] = contextvars.ContextVar("route", default="")

# Printable, no spaces, quotes or underscores (so an API key, aak_..., is never taken for one), bounded.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:/+=-]{7,127}")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
request_logger = logging.getLogger("agentapi.request")


def bind_tenant(*, slug: str = "", tenant_id: str = "") -> None:
    """Name the tenant the current request acts for, in its log records."""
    if slug:
        tenant_var.set(slug)
    if tenant_id:
        tenant_id_var.set(str(tenant_id))


def current_request_id() -> str:
    return request_id_var.get()


class RequestContextFilter(logging.Filter):
    """Copy the current request's id, route and tenant onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", "") or request_id_var.get()
        record.route = getattr(record, "route", "") or route_var.get()
        record.tenant = getattr(record, "tenant", "") or tenant_var.get()
        record.tenant_id = getattr(record, "tenant_id", "") or tenant_id_var.get()
        return True


JSON_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "tenant", "tenant_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the request fields that are set."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The classic line, with the request id appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} [request_id={request_id}]" if request_id else line


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
