"""Session middleware: client metadata for each session, and a clear 503 when the session store is down."""

from __future__ import annotations

import logging

from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from agentapi_admin import metrics
from agentapi_admin.client_address import client_ip
from agentapi_admin.middleware import BrowserOnly
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

RETRY_AFTER = "5"


def wants_json(request) -> bool:
    """Tell whether the client asked for JSON (API paths, ?format=json twins, Accept header)."""
    return (
        request.path.startswith("/api/")
        or request.GET.get("format") == "json"
        or "application/json" in request.headers.get("Accept", "")
    )


def store_unavailable_response(request, *, what: str) -> HttpResponse:
    """Answer 503 saying which store is unavailable: JSON for JSON clients, a small HTML page otherwise."""
    if what == "session":
        error, detail = "session_store_unavailable", "The session store (Redis) is unavailable; retry shortly."
    elif what == "database":
        error, detail = (
            "database_unavailable",
            "The database is unavailable, so this page cannot be served; retry shortly.",
        )
    else:
        error, detail = "storage_unavailable", "Redis is unavailable, so this page cannot be served; retry shortly."
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"error": error, "detail": detail}, status=503)
    else:
        html = render_to_string("resilience/store_unavailable.html", {"detail": detail, "back_url": request.path})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = RETRY_AFTER
    response["Cache-Control"] = "no-store"
    return response


class ResilientSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware, answering 503 (never 500) when the session store cannot be reached.

    Loading already degrades (Django's cache store treats an unreadable session as
    empty, so the visitor is anonymous); saving, creating and rotating raise, and
    without this a sign-in during a Redis outage would be a 500.
    """

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.warning("session store unavailable while saving a session: %s", type(exc).__name__)
            metrics.session_store_failure("save")
            if getattr(getattr(request, "session", None), "activity_only", False):
                return response  # only the last-seen metadata was lost; the page itself is fine
            return store_unavailable_response(request, what="session")

    def process_exception(self, request, exception):
        if isinstance(exception, REDIS_UNAVAILABLE_ERRORS):
            logger.warning("Redis unavailable during %s %s: %s", request.method, request.path, type(exception).__name__)
            session = getattr(request, "session", None)
            metrics.session_store_failure("request")
            what = "session" if session is not None and _session_touched(session) else "storage"
            return store_unavailable_response(request, what=what)
        return None


def _session_touched(session) -> bool:
    # A view that failed while creating/rotating the session (login, logout) left it modified.
    return bool(getattr(session, "modified", False)) or getattr(session, "_session_key", None) is None


class SessionActivityMiddleware:
    """Refresh the session's client metadata, at most once per SESSION_ACTIVITY_INTERVAL.

    Must sit after SessionMiddleware (so SessionMiddleware saves what this marks as
    modified) and after AuthenticationMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        note = getattr(session, "note_activity", None)
        if session is not None and note is not None:
            modified = session.modified
            if note(ip=client_ip(request) or "", user_agent=request.META.get("HTTP_USER_AGENT", "")):
                # A Redis that cannot take this write (down, full) must not turn the page into a 503.
                session.activity_only = not modified
        return response


# The session middlewares as the settings install them: API requests authenticate with a key,
# never a cookie, so they skip both (agentapi_admin.middleware.BrowserOnly).
class BrowserOnlySessionMiddleware(BrowserOnly, ResilientSessionMiddleware):
    """Sessions for pages; API requests authenticate with a key, never a cookie."""


class BrowserOnlySessionActivityMiddleware(BrowserOnly, SessionActivityMiddleware):
    """Session last-seen metadata for pages."""
