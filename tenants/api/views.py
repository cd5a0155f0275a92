"""The service API (`/api/v1/`) on django-ninja: bootstrap, single flags, the OpenAPI document.

Handlers stay thin: the auth callable runs the one-round-trip gate
(`tenants.api.gateway`) and maps every refusal to a JSON error; handlers only shape
the answer. Bodies come from Redis already serialised, so the hot path never
re-validates a payload it built itself.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Path, Query
from ninja.errors import AuthenticationError, ValidationError
from ninja.security.http import HttpAuthBase

from agentapi_admin.client_address import client_ip_identity
from agentapi_admin.openapi import DocumentedAPI, problems
from agentapi_admin.problems import as_problem, problem_response
from resilience.ratelimit import ratelimit_response
from resilience.ratelimit.enforce import ratelimit_enforce
from resilience.ratelimit.middleware import limits_itself
from tenants.api.gateway import GatewayResult, gateway_call
from tenants.api.schemas import BootstrapOut, FlagOut
from tenants.models import FLAG_KEY_PATTERN
from tenants.selectors import flag_evaluate_from_rules
from tenants.services.apikeys import KEY_PATTERN

ERRORS = problems(401, 403, 422, 429, 503)
SUBJECT_MAX_LENGTH = 200
# Sent to the gateway instead of a flag key that cannot exist: such a request is answered 422, never billed.
_NO_SUCH_FLAG = "!"
_FLAG_KEY = re.compile(FLAG_KEY_PATTERN)


class ApiError(Exception):
    """An API refusal rendered as `{"error", "detail", "field"?}` JSON."""

    def __init__(self, status: int, error: str, detail: str, *, field: str | None = None, headers=None, response=None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field
        self.headers = headers or {}
        self.response = response


def error_response(status: int, error: str, detail: str, *, field: str | None = None, headers=None) -> JsonResponse:
    """Return an RFC 9457 problem; `error`, `detail` and `field` keep the members clients already read."""
    return problem_response(status, error, detail, field=field, headers=headers)


_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="agentapi", error="invalid_token"'}
_KEY_ERRORS = {
    "unknown": ("invalid_api_key", "Unknown API key."),
    "revoked": ("revoked_api_key", "This API key was revoked; ask the tenant owner for a new one."),
    "expired": ("expired_api_key", "This API key has expired; ask the tenant owner for a new one."),
}


def _seconds_to_midnight_utc() -> int:
    now = timezone.now()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


class TenantKey(HttpAuthBase):
    """Bearer tenant API key (`aak_<prefix>_<secret>`), checked, limited and counted in one Redis call."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_bearerFormat = "aak_<prefix>_<secret>"

    def __init__(self, *, field: str, scope: str):
        super().__init__()
        self.field = field
        self.scope = scope

    def __call__(self, request: HttpRequest) -> GatewayResult:
        # META, not request.headers: that builds a dict of every header on first use, for one lookup.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            self._refuse_per_ip(request)
            raise ApiError(
                401,
                "missing_api_key",
                "Send the tenant API key as `Authorization: Bearer aak_...`.",
                headers=_UNAUTHORIZED,
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not KEY_PATTERN.match(token):
            self._refuse_per_ip(request)
            raise ApiError(
                401,
                "invalid_api_key",
                "Malformed credentials: expected `Authorization: Bearer aak_<8 hex>_<43 characters>`.",
                headers=_UNAUTHORIZED,
            )
        inm = request.META.get("HTTP_IF_NONE_MATCH", "") if self.field == "body" else ""
        result = gateway_call(
            token,
            scope=self.scope,
            flag_key=self._flag_key(request),
            field_name=self.field,
            if_none_match=inm,
            client_ip=client_ip_identity(request),
        )
        outcome = result.outcome
        if outcome in _KEY_ERRORS:
            raise ApiError(401, *_KEY_ERRORS[outcome], headers=_UNAUTHORIZED)
        if outcome == "not_serving":
            error = "tenant_deleted" if result.tenant_status == "deleted" else "tenant_suspended"
            raise ApiError(403, error, f"The tenant is {result.tenant_status}; API access is stopped.")
        if outcome == "limited":
            raise ApiError(429, "rate_limited", "", response=ratelimit_response(result.decision))
        if outcome == "quota":
            raise ApiError(
                429,
                "quota_exceeded",
                f"The tenant's daily quota of {result.quota} requests is used up; it resets at 00:00 UTC.",
                headers={"Retry-After": str(_seconds_to_midnight_utc())},
            )
        if outcome == "scope":
            raise ApiError(403, "insufficient_scope", f"This API key lacks the {self.scope!r} scope.")
        if outcome != "ok":
            raise ApiError(
                503,
                "service_unavailable",
                "The API cannot serve this request right now; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if self.scope not in result.scopes:  # answered from the database while Redis is away
            raise ApiError(403, "insufficient_scope", f"This API key lacks the {self.scope!r} scope.")
        return result

    @staticmethod
    def _refuse_per_ip(request: HttpRequest) -> None:
        """Spend the client address's budget on a request without usable credentials; raise when it is spent."""
        denied = ratelimit_enforce(request, scopes=("ip",))
        if denied is not None:
            raise ApiError(denied.status_code, "rate_limited", "", response=denied)

    def _flag_key(self, request: HttpRequest) -> str:
        """Return the flag key the gateway checks before billing ('' for the whole document)."""
        if self.field != "rules":
            return ""
        key = (request.resolver_match.kwargs if request.resolver_match else {}).get("key", "")
        subject = request.GET.get("subject")
        valid_subject = subject is None or 1 <= len(subject) <= SUBJECT_MAX_LENGTH
        return key if valid_subject and _FLAG_KEY.match(key) else _NO_SUCH_FLAG


api = DocumentedAPI(
    title="agentapi-admin service API",
    version="1",
    description="Tenant configuration and evaluated feature flags for AgentAPI replicas.",
    urls_namespace="api-v1",
    servers=[{"url": "/", "description": "this deployment"}],
    etag_operations={"bootstrap"},
    # Swagger UI loads from a CDN, which the CSP forbids; the JSON document is what clients use.
    docs_url=None,
)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    if exc.response is not None:
        return as_problem(exc.response)
    return error_response(exc.status, exc.error, exc.detail, field=exc.field, headers=exc.headers)


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return error_response(401, "missing_api_key", "Send `Authorization: Bearer aak_...`.", headers=_UNAUTHORIZED)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    first = exc.errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    name = ".".join(loc) or "request"
    return error_response(422, "invalid_request", f"{name}: {first.get('msg', 'invalid value')}", field=name)


def _with_limits(response: HttpResponse, result: GatewayResult) -> HttpResponse:
    if result.decision is not None:
        for name, value in result.decision.headers().items():
            response[name] = value
    return response


BOOTSTRAP_AUTH = TenantKey(field="body", scope="config:read")


@api.get(
    "/bootstrap",
    auth=BOOTSTRAP_AUTH,
    response={200: BootstrapOut, 304: None, **ERRORS},
    summary="Tenant configuration, limits and every evaluated flag",
    description="Send the ETag back in If-None-Match: an unchanged document answers 304 with no body.",
)
def bootstrap(request):
    result: GatewayResult = request.auth
    if result.not_modified:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(result.payload, content_type="application/json")
    response["ETag"] = result.etag
    # Clients may keep the document but must revalidate: a suspension applies at once.
    response["Cache-Control"] = "private, no-cache"
    return _with_limits(response, result)


@api.get(
    "/flags/{key}",
    operation_id="flag_evaluate",
    auth=TenantKey(field="rules", scope="flags:read"),
    response={200: FlagOut, **problems(404), **ERRORS},
    summary="Evaluate one flag for a subject (user, session, …)",
)
def flag(
    request,
    key: str = Path(..., pattern=FLAG_KEY_PATTERN, description="Flag key"),
    subject: str | None = Query(
        None, min_length=1, max_length=SUBJECT_MAX_LENGTH, description="Stable id used for rollouts"
    ),
):
    result: GatewayResult = request.auth
    subject = subject or result.tenant_id
    evaluated = flag_evaluate_from_rules(json.loads(result.payload), key, subject)
    if evaluated is None:
        response = error_response(404, "unknown_flag", f"No flag with key {key!r}.", field="key")
    else:
        response = JsonResponse({"key": key, "subject": subject, **evaluated.__dict__})
    return _with_limits(response, result)


def json_method_not_allowed(view):
    """Wrap a view so Django's plain-text 405 becomes a problem naming the allowed methods."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "").startswith("text/"):
            allowed = response.get("Allow", "")
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {allowed}.",
                headers={"Allow": allowed},
            )
        return response

    return wrapped


# The operations whose auth is TenantKey (their URL names); a test checks the list against the API.
GATEWAY_ROUTES = ("bootstrap", "flag")


def _direct(ninja_view, auth: TenantKey, handler):
    """Serve a parameterless GET route by calling its gate and handler directly.

    django-ninja's dispatch (operation lookup, checks, a temporal response, its exception
    routing) is a fixed cost on the hottest route that buys nothing there: no parameters
    to parse, one auth callable whose refusals are ApiError. ninja still owns the route in
    the OpenAPI document and answers every other method (405 JSON).
    """

    @wraps(handler)
    def view(request):
        if request.method != "GET":
            return ninja_view(request)
        try:
            request.auth = auth(request)
        except ApiError as exc:
            return _api_error(request, exc)
        return handler(request)

    view.csrf_exempt = True  # a key, never a cookie, authenticates the API (as ninja marks its views)
    return view


# Routes served by _direct: URL name -> (auth, handler).
DIRECT_ROUTES = {"bootstrap": (BOOTSTRAP_AUTH, bootstrap)}


def api_not_found(request, *args, **kwargs):
    """Answer unknown /api/v1/ paths with JSON, like every other API error."""
    return error_response(404, "not_found", f"No API endpoint at {request.path}; see /api/v1/openapi.json.")


def api_urls():
    """Return the API's URL patterns with JSON 405 answers."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = json_method_not_allowed(pattern.callback)
        if pattern.name in DIRECT_ROUTES:
            pattern.callback = _direct(pattern.callback, *DIRECT_ROUTES[pattern.name])
        if pattern.name in GATEWAY_ROUTES:
            # TenantKey limits these: per tenant for a valid key, per client address otherwise.
            limits_itself(pattern.callback)
    return patterns, app_name, namespace
