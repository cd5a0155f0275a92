"""The service API (`/api/v1/`) on django-ninja: bootstrap, single flags, the OpenAPI document.

Handlers stay thin: the auth callable runs the one-round-trip gate
(`tenants.api.gateway`) and maps every refusal to a JSON error; handlers only shape
the answer. Bodies come from Redis already serialised, so the hot path never
re-validates a payload it built itself.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from datetime import timedelta
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from django.utils import timezone
from ninja import Path, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security.http import HttpAuthBase
from pydantic import ValidationError as PydanticValidationError

from agentapi_admin.client_address import client_ip_identity
from agentapi_admin.openapi import DocumentedAPI, problems
from agentapi_admin.problems import as_problem, problem_response
from resilience.ratelimit import ratelimit_response
from resilience.ratelimit.enforce import ratelimit_enforce
from resilience.ratelimit.middleware import limits_itself
from tenants.api.gateway import ASK_ALL, GatewayResult, ask_field, gateway_call
from tenants.api.schemas import SUBJECT_MAX_LENGTH, BootstrapOut, EvaluateIn, EvaluateOut, FlagOut
from tenants.models import FLAG_KEY_PATTERN
from tenants.selectors import EvaluatedFlag, flag_evaluate_from_rules
from tenants.services.apikeys import KEY_PATTERN

ERRORS = problems(401, 403, 422, 429, 503)
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
        flag_key = self._flag_key(request)
        result = gateway_call(
            token,
            scope=self.scope,
            flag_key=flag_key,
            field_name=self.field,
            if_none_match=inm,
            client_ip=client_ip_identity(request),
            asked=self._asked(request, flag_key),
        )
        outcome = result.outcome
        if outcome in _KEY_ERRORS:
            raise ApiError(401, *_KEY_ERRORS[outcome], headers=_UNAUTHORIZED)
        if outcome == "not_serving":
            error = "tenant_deleted" if result.tenant_status == "deleted" else "tenant_suspended"
            raise ApiError(403, error, f"The tenant is {result.tenant_status}; API access is stopped.")
        if outcome == "limited":
            assert result.decision is not None  # a "limited" result always carries its decision
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

    def _asked(self, request: HttpRequest, flag_key: str) -> str:
        """Return the asked-flags field a served request counts (`gateway.ask_field`): its flag, its keys, or all."""
        if flag_key or request.method != "POST":
            return flag_key or ASK_ALL
        # A POST names its flags in the body's `keys` (absent or null: every flag). A body the
        # handler will refuse is never served, so nothing is counted for it whatever this returns.
        try:
            keys = json.loads(request.body or b"{}").get("keys")
        except (ValueError, AttributeError):
            return ""
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            return ""
        return ask_field(keys)

    def _flag_key(self, request: HttpRequest) -> str:
        """Return the flag key the gateway checks before billing ('' for the whole document)."""
        if self.field != "rules":
            return ""
        if request.method == "POST":
            # POST /evaluate: a body that will be refused is not billed either. Parsed as django-ninja
            # parses it (json.loads, then the schema), so both always agree on what is refused.
            try:
                EvaluateIn.model_validate(json.loads(request.body))
            except (ValueError, PydanticValidationError):
                return _NO_SUCH_FLAG
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


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    # ninja's own refusals, e.g. a body that is not JSON ("Cannot parse request body").
    field = "body" if exc.status_code == 400 else None
    return error_response(exc.status_code, "invalid_request", f"{exc}.", field=field)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    first = exc.errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    name = ".".join(loc) or "body"
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


class ParsedRules:
    """The rules of the documents this process served lately, parsed once per tenant and ETag.

    A document's ETag is a hash of its body, which carries the cache version: any committed
    change gives a new ETag, so a parse is reused only for the very bytes it came from.
    Parsing 50 flags' rules costs ~100 µs a request; the dictionaries are only read.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._parsed: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, result: GatewayResult) -> dict:
        """Return the result's rules, parsed (from this process's copy when the ETag is known)."""
        if not result.etag:
            return json.loads(result.payload)
        key = (result.tenant_id, result.etag)
        with self._lock:
            rules = self._parsed.get(key)
            if rules is not None:
                self._parsed.move_to_end(key)
                return rules
        rules = json.loads(result.payload)
        with self._lock:
            self._parsed[key] = rules
            while len(self._parsed) > self._size:
                self._parsed.popitem(last=False)
        return rules


parsed_rules = ParsedRules()


def _answer(evaluated: EvaluatedFlag) -> dict:
    """Return an evaluated flag as the API writes it: `rule` only when a rule decided."""
    answer = dict(evaluated.__dict__)
    if answer["rule"] is None:
        del answer["rule"]
    return answer


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
    evaluated = flag_evaluate_from_rules(parsed_rules.get(result), key, subject)
    if evaluated is None:
        response = error_response(404, "unknown_flag", f"No flag with key {key!r}.", field="key")
    else:
        response = JsonResponse({"key": key, "subject": subject, **_answer(evaluated)})
    return _with_limits(response, result)


@api.post(
    "/evaluate",
    operation_id="evaluate",
    auth=TenantKey(field="rules", scope="flags:read"),
    response={200: EvaluateOut, **ERRORS},
    summary="Evaluate flags for a subject and an evaluation context",
    description="Every flag (or those in `keys`) evaluated for `subject` and `context`, as the SDKs evaluate "
    "the bootstrap's `eval` entries locally. Requested keys the tenant has no flag for are listed in `missing`.",
)
def evaluate(request, body: EvaluateIn):
    result: GatewayResult = request.auth
    rules = parsed_rules.get(result)
    subject = body.subject or result.tenant_id
    keys = sorted(rules) if body.keys is None else list(dict.fromkeys(body.keys))
    flags, missing = {}, []
    for key in keys:
        evaluated = flag_evaluate_from_rules(rules, key, subject, body.context)
        if evaluated is None:
            missing.append(key)
            continue
        flags[key] = _answer(evaluated)
    return _with_limits(JsonResponse({"subject": subject, "flags": flags, "missing": missing}), result)


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
GATEWAY_ROUTES = ("bootstrap", "flag", "evaluate")
# The method each gateway route serves (GET unless named): the gate limits that method, the middleware the rest.
_GATEWAY_METHODS = {"evaluate": ("POST",)}


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

    # A key, never a cookie, authenticates the API (as ninja marks its views); Django reads the attribute.
    view.csrf_exempt = True  # type: ignore[attr-defined]
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
        assert isinstance(pattern, URLPattern)  # ninja lists its views, never an include()
        pattern.callback = json_method_not_allowed(pattern.callback)
        if pattern.name in DIRECT_ROUTES:
            pattern.callback = _direct(pattern.callback, *DIRECT_ROUTES[pattern.name])
        if pattern.name in GATEWAY_ROUTES:
            # TenantKey limits these: per tenant for a valid key, per client address otherwise.
            limits_itself(pattern.callback, methods=_GATEWAY_METHODS.get(pattern.name, ("GET",)))
    return patterns, app_name, namespace
