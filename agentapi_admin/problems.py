"""RFC 9457 problem details: the one error shape of both JSON APIs.

Every API error is `application/problem+json` with the standard members `type`,
`title`, `status` and `detail`, plus the members clients relied on before the
switch: `error` (a stable code), `field` (the input at fault, when one is) and any
extra the error carries (`retry_after`, `limit`, …). `type` is the error code as a
tag URI, so a client may branch on either; docs/automation.md lists the codes.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse, JsonResponse

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "tag:agentapi-admin,2026:problems/"


def problem_body(status: int, error: str, detail: str, *, field: str | None = None, **extra) -> dict:
    """Return the problem document for `error` (a stable snake_case code)."""
    body = {
        "type": f"{TYPE_PREFIX}{error}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": error,
    }
    if field:
        body["field"] = field
    body.update(extra)
    return body


def problem_response(
    status: int, error: str, detail: str, *, field: str | None = None, headers: dict | None = None, **extra
) -> JsonResponse:
    """Return a problem+json response, with `headers` set on it."""
    response = JsonResponse(problem_body(status, error, detail, field=field, **extra), status=status)
    response["Content-Type"] = CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def as_problem(response: HttpResponse) -> HttpResponse:
    """Rewrite a JSON error `{"error", "detail", …}` (e.g. the limiter's 429) as problem+json, headers kept."""
    if response.get("Content-Type", "") == CONTENT_TYPE:
        return response
    body = json.loads(response.content)
    error, detail = body.pop("error"), body.pop("detail")
    problem = problem_body(response.status_code, error, detail, **body)
    response.content = json.dumps(problem).encode()
    response["Content-Type"] = CONTENT_TYPE
    return response
