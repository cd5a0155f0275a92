"""The admin API (`/api/v1/admin/`): a second NinjaAPI with its own OpenAPI document and problem+json errors.

Handlers stay thin: `StaffTokenAuth` checks the token, its scope, its user's
permission and the per-token rate limit; handlers parse, call a tenants service
inside `acting()` (actor = the token's user, provenance = the token) and render.
"""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.urls import URLPattern
from ninja.errors import AuthenticationError, HttpError, ValidationError
from redis import RedisError

from agentapi_admin.openapi import DocumentedAPI
from agentapi_admin.problems import as_problem, problem_response
from automation.api import (
    audit,
    catalog,
    changes,
    environments,
    estate,
    invitations,
    keys,
    members,
    ops,
    segments,
    tenants,
    webhooks,
)
from automation.api.auth import CHALLENGE
from automation.api.http import Problem
from resilience.ratelimit.enforce import add_headers
from resilience.ratelimit.middleware import limits_itself
from tenants.api.views import json_method_not_allowed
from tenants.exceptions import TenantsError
from webhooks.exceptions import WebhooksError

log = logging.getLogger(__name__)

api = DocumentedAPI(
    title="agentapi-admin admin API",
    version="1",
    description=(
        "Provision tenants, plans, flags, overrides and API keys with a staff token "
        "(`Authorization: Bearer sat_...`). Every write is audited as the token's user. "
        "Updates need If-Match; creates honour Idempotency-Key; errors are RFC 9457 problem+json."
    ),
    urls_namespace="api-v1-admin",
    servers=[{"url": "/", "description": "this deployment"}],
    # Swagger UI loads from a CDN, which the CSP forbids; the JSON document is what clients use.
    docs_url=None,
)
api.add_router("", tenants.router)
api.add_router("", catalog.router)
api.add_router("", segments.router)
api.add_router("", keys.router)
api.add_router("", audit.router)
api.add_router("", estate.router)
api.add_router("", ops.router)
api.add_router("", members.router)
api.add_router("", invitations.router)
api.add_router("", webhooks.router)
api.add_router("", changes.router)
api.add_router("", environments.router)


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    if exc.response is not None:
        return as_problem(exc.response)
    return problem_response(exc.status, exc.error, exc.detail, field=exc.field, headers=exc.headers, **exc.extra)


@api.exception_handler(TenantsError)
def _service_refusal(request, exc: TenantsError):
    return problem_response(422, "invalid_request", exc.message, field=exc.field)


@api.exception_handler(WebhooksError)
def _webhooks_refusal(request, exc: WebhooksError):
    return problem_response(422, "invalid_request", exc.message, field=exc.field)


def _nul_at(value, parts=()) -> tuple | None:
    """Return the path of the first string (or key) in a parsed body that holds a NUL character, else None."""
    if isinstance(value, str):
        return parts if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (*parts, key)
        found = _nul_at(item, (*parts, key))
        if found is not None:
            return found
    return None


@api.exception_handler(DataError)
def _value_refused(request, exc: DataError):
    # PostgreSQL refuses NUL in text and JSON; a body is small, so find which member held one.
    try:
        where = _nul_at(json.loads(request.body or b"null"))
    except ValueError:
        where = None
    if where is None:
        log.warning("admin API: the database refused a value: %s", exc)
        return problem_response(422, "invalid_request", "The database refused a value of this request.")
    name = field_path(where) or "body"
    return problem_response(422, "invalid_request", f"{name}: text cannot contain a NUL character.", field=name)


@api.exception_handler(RedisError)
def _redis_unavailable(request, exc):
    # Only the operations that read or change Redis state itself get here (counters, breakers, idempotency).
    return problem_response(
        503, "redis_unavailable", "Redis is unreachable; retry shortly.", headers={"Retry-After": "1"}
    )


@api.exception_handler(PermissionDenied)
def _service_permission(request, exc):
    return problem_response(403, "permission_denied", str(exc) or "Not allowed.")


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    detail = "Send a staff token as `Authorization: Bearer sat_...`."
    return problem_response(401, "missing_token", detail, headers={"WWW-Authenticate": CHALLENGE})


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    # django-ninja raises it for a body it cannot parse (400); nothing else here raises it.
    if exc.status_code == 400:
        return problem_response(400, "malformed_json", f"The request body is not valid JSON ({exc}).", field="body")
    return problem_response(exc.status_code, "http_error", str(exc))


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    first = exc.errors[0]
    where = first.get("loc", ())
    name = field_path(part for part in where if part not in ("query", "path", "body", "header", "payload"))
    if first.get("type") == "json_invalid":
        return problem_response(400, "malformed_json", "The request body is not valid JSON.", field="body")
    status = 422 if where and where[0] == "body" else 400
    name = name or "body"
    return problem_response(status, "invalid_request", f"{name}: {first.get('msg', 'invalid value')}", field=name)


def field_path(parts) -> str:
    """Return a validation error's location as the services name fields: `rules[0].serve.variant`."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def admin_api_not_found(request, *args, **kwargs):
    """Answer unknown /api/v1/admin/ paths with a problem, like every other admin-API error."""
    return problem_response(
        404, "not_found", f"No admin API endpoint at {request.path}; see /api/v1/admin/openapi.json."
    )


def admin_api_urls():
    """Return the admin API's URL patterns: JSON 405s, and each view limits itself per token."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)  # ninja lists its views, never an include()
        pattern.callback = json_method_not_allowed(pattern.callback)
        if pattern.name != "openapi-json":
            pattern.callback = limits_itself(_with_limit_headers(pattern.callback), methods=WRITE_AND_READ)
    return patterns, app_name, namespace


WRITE_AND_READ = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _with_limit_headers(view):
    """Copy the token's RateLimit-* headers onto the answer here, not only in a middleware API paths may skip."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return add_headers(request, view(request, *args, **kwargs))

    return wrapped
