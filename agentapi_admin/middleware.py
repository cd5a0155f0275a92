"""Request hygiene shared by every view, and the service API's path past browser-only middleware."""

from __future__ import annotations

import http.client as http_client
from collections.abc import Callable
from functools import cache
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware

from agentapi_admin.problems import problem_response

MESSAGE = "The query string contains a NUL character, which no parameter accepts; remove it and try again."


class RejectNulBytesMiddleware:
    """Answer 400 when the query string carries a NUL character.

    PostgreSQL refuses NUL in text, and Django's own admin list filters pass query
    values straight to the database, so `?status=%00` was a 500. Forms already refuse
    NUL with a field error (Django's ProhibitNullCharactersValidator) and paths with a
    NUL match no route, so only the query string needs this.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            if request.path.startswith("/api/"):
                return problem_response(400, "bad_request", MESSAGE, field="query")
            if "json" in request.headers.get("Accept", ""):
                return JsonResponse({"error": "bad_request", "detail": MESSAGE}, status=400)
            return HttpResponse(MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _has_nul(request) -> bool:
    # On the raw string, so the service API's hot path parses nothing: a NUL can only
    # arrive as "%00" (or a raw byte), and "%2500" is a literal "%00", not a NUL.
    query = request.META.get("QUERY_STRING", "")
    return bool(query) and ("%00" in query or "\x00" in query)


# ------------------------------------------------------------- the service API's fast path
# Machine clients of /api/ send no cookies a page set, render no HTML and are never framed:
# the browser-only middlewares below pass those requests straight through, and
# ApiSecurityHeadersMiddleware gives every API response fixed headers instead of the
# page policy. The prefix is a path, never a header, so no client can choose the cheap path
# for a page.
API_PATH_PREFIX = "/api/"
API_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
)


class BrowserOnly:
    """Mixin: skip this middleware (request and response work) on service-API paths."""

    get_response: Callable[..., Any]  # set by the middleware class this mixin precedes

    def __call__(self, request):
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        # The middleware class this mixin precedes provides __call__.
        return super().__call__(request)  # type: ignore[misc]


class ApiSecurityHeadersMiddleware:
    """Give service-API responses a deny-all CSP, X-Frame-Options and a Content-Length, without per-request work."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith(API_PATH_PREFIX):
            for name, value in API_SECURITY_HEADERS:
                if name not in response:
                    response[name] = value
            # CommonMiddleware, which sets it for pages, is skipped here: without it gunicorn chunks the body.
            if not response.streaming and "Content-Length" not in response:
                response["Content-Length"] = str(len(response.content))
        return response


class BrowserOnlyWhiteNoiseMiddleware(BrowserOnly, WhiteNoiseMiddleware):
    """WhiteNoise for pages: no static file lives under /api/."""


class BrowserOnlyCommonMiddleware(BrowserOnly, CommonMiddleware):
    """Slash and www redirects for pages; the API answers unknown paths with JSON itself."""


class BrowserOnlyCsrfViewMiddleware(BrowserOnly, CsrfViewMiddleware):
    """CSRF protection for pages; API views take no cookie, so there is nothing to forge."""

    def process_view(self, request, callback, callback_args, callback_kwargs):
        if request.path_info.startswith(API_PATH_PREFIX):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class BrowserOnlyAuthenticationMiddleware(BrowserOnly, AuthenticationMiddleware):
    """`request.user` for pages; API handlers know their caller from the key."""


class BrowserOnlyMessageMiddleware(BrowserOnly, MessageMiddleware):
    """Flash messages for pages."""


class BrowserOnlyXFrameOptionsMiddleware(BrowserOnly, XFrameOptionsMiddleware):
    """X-Frame-Options for pages (API responses get theirs from ApiSecurityHeadersMiddleware)."""


_PER_RESPONSE_POLICY = tuple(f"_csp_{part}{ro}" for ro in ("", "_ro") for part in ("config", "update", "replace"))


@cache
def browser_csp_headers() -> tuple[tuple[str, str, tuple], ...]:
    """Return (header, value, excluded path prefixes) for the configured policies, built once per settings."""
    headers = []
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        value = build_policy(report_only=report_only) if getattr(settings, setting, None) else ""
        if value:
            prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
            headers.append((header, value, prefixes))
    return tuple(headers)


@receiver(setting_changed)
def _forget_csp_headers(*, setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        browser_csp_headers.cache_clear()


class BrowserOnlyCSPMiddleware(BrowserOnly, CSPMiddleware):
    """django-csp for pages, with the policy header built once instead of on every response.

    A response that asks for its own policy (the csp_update/csp_replace decorators) or a
    request that used a nonce is built by django-csp as before.
    """

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _PER_RESPONSE_POLICY
        ):
            return super().process_response(request, response)
        if response.status_code in (http_client.INTERNAL_SERVER_ERROR, http_client.NOT_FOUND) and settings.DEBUG:
            return response  # django-csp leaves Django's debug pages alone
        exempt = {HEADER: "_csp_exempt", HEADER_REPORT_ONLY: "_csp_exempt_ro"}
        for header, value, prefixes in browser_csp_headers():
            if (
                header not in response
                and not getattr(response, exempt[header], False)
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = value
        # As django-csp does: a nonce asked for after the header is written would be missing from it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
