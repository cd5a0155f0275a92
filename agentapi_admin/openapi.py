"""What both OpenAPI documents say beyond django-ninja's defaults: headers, problem bodies, operation ids."""

from __future__ import annotations

from ninja import NinjaAPI, Schema

from agentapi_admin.problems import CONTENT_TYPE as PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `error` is the stable code, `field` the input at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "error"],
    "properties": {
        "type": {"type": "string", "description": "tag:agentapi-admin,2026:problems/<error>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "error": {"type": "string"},
        "field": {"type": "string"},
        "retry_after": {"type": "integer"},
        "limit": {"type": "integer"},
        "remaining": {"type": "integer"},
        "flags": {
            "type": "array",
            "items": {"type": "string"},
            "description": "segment_in_use: the keys of the flags whose rules use the segment.",
        },
    },
    "additionalProperties": True,
}


class Problem(Schema):
    """The response model handlers declare for errors; the document shows PROBLEM_SCHEMA in its place."""

    type: str
    title: str
    status: int
    detail: str
    error: str
    field: str | None = None


def problems(*statuses: int) -> dict:
    """Return `{status: Problem}` for a handler's `response=`."""
    return dict.fromkeys(statuses, Problem)


_INT = {"schema": {"type": "integer"}}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed per window (when the limiter counted the request).", **_INT},
    "RateLimit-Remaining": {"description": "Requests left in the current window.", **_INT},
    "RateLimit-Reset": {"description": "Seconds until the allowance is full again.", **_INT},
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", **_INT}}
_STR = {"schema": {"type": "string"}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": 'Bearer challenge, e.g. `Bearer realm="agentapi"`.', **_STR}}
ETAG = {"ETag": {"description": "Strong validator of the representation; send it back in If-Match.", **_STR}}


class DocumentedAPI(NinjaAPI):
    """A NinjaAPI whose document names operations by their view and describes every header and error body.

    `etag_operations`: operation ids whose 2xx/304 answers carry an ETag (None: every operation).
    """

    def __init__(self, *args, etag_operations: set[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.etag_operations = etag_operations

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for operations in schema["paths"].values():
            for operation in operations.values():
                etag = self.etag_operations is None or operation.get("operationId") in self.etag_operations
                for status, response in operation["responses"].items():
                    describe_response(int(status), response, etag=etag)
        return schema


def describe_response(status: int, response: dict, *, etag: bool) -> None:
    """Add the headers an answer with `status` carries, and the problem+json body of an error."""
    headers = dict(RATE_LIMIT_HEADERS)
    if status in (429, 503):
        headers.update(RETRY_AFTER)
    if status == 401:
        headers.update(WWW_AUTHENTICATE)
    if etag and (200 <= status < 300 or status == 304) and status != 204:
        headers.update(ETAG)
    response.setdefault("headers", {}).update(headers)
    if status >= 400:
        response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
