"""Log record formatting shared by the app and gunicorn: request context, JSON and plain formatters.

Standard library only, so gunicorn's master can load the formatter from
`gunicorn.conf.py` before Django (or any metric) is imported. `LOG_FORMAT=json`
writes one JSON object per line with only the fields in `JSON_FIELDS`, never a
record's arguments or attached request, so no header or form value can leak into
the log by way of a library's record.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")
tenant_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant_id", default="")
route_var: contextvars.ContextVar[str] = contextvars.ContextVar("route", default="")


def bind_tenant(*, slug: str = "", tenant_id: str = "") -> None:
    """Name the tenant the current request acts for, in its log records."""
    if slug:
        tenant_var.set(slug)
    if tenant_id:
        tenant_id_var.set(str(tenant_id))


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
        data: dict[str, object] = {
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
