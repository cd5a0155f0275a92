"""HTTP semantics of the admin API: problems, ETags and If-Match, cursors, audited writes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpResponse

from agentapi_admin.client_address import client_ip
from audit.services import audit_via

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Problem(Exception):
    """An admin-API refusal, rendered as problem+json (agentapi_admin.problems)."""

    def __init__(
        self, status: int, error: str, detail: str, *, field: str | None = None, headers=None, response=None, **extra
    ):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field
        self.headers = headers or {}
        self.response = response
        self.extra = extra


def dumps(data) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))


def etag_of(data) -> str:
    """Return the strong ETag of a representation: a digest of its canonical JSON."""
    return '"' + hashlib.sha256(dumps(data).encode()).hexdigest()[:32] + '"'


def resource(request, data, *, status: int = 200, headers: dict | None = None, version=None) -> HttpResponse:
    """Answer `data` as JSON with its ETag (of `version` when given); a matching If-None-Match GET answers 304."""
    etag = etag_of(data if version is None else version)
    if request.method == "GET" and etag in _etags(request.headers.get("If-None-Match", "")):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(dumps(data), status=status, content_type="application/json")
    response["ETag"] = etag
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def require_if_match(request, current) -> None:
    """Refuse a change sent without If-Match (428) or against another version than `current`'s (412)."""
    header = request.headers.get("If-Match")
    if not header:
        raise Problem(
            428,
            "precondition_required",
            "Send the resource's ETag in If-Match (GET it first), so a concurrent change is not overwritten.",
            field="If-Match",
        )
    etag = etag_of(current)
    if header.strip() != "*" and etag not in _etags(header):
        raise Problem(
            412,
            "precondition_failed",
            "The resource changed since you read it (If-Match does not match its ETag); GET it again and retry.",
            field="If-Match",
            headers={"ETag": etag},
        )


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": value}).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: type = str):
    """Return the position (a `kind`) a cursor points after, or None for the first page; a bad cursor is a 400."""
    if raw is None:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["after"]
    except (ValueError, TypeError, KeyError):
        after = None
    # Only a value the database can compare: a str without NUL (PostgreSQL refuses it) or a bigint.
    valid = (kind is str and isinstance(after, str) and "\x00" not in after) or (
        kind is int and type(after) is int and 0 <= after < 2**63
    )
    if not valid:
        raise Problem(
            400, "invalid_cursor", "cursor is not one this API issued: pass `next_cursor` as it came.", field="cursor"
        )
    return after


def page(
    request,
    queryset,
    *,
    key: str,
    cursor: str | None,
    limit: int,
    serialize: Callable,
    kind: type = str,
    prepare: Callable | None = None,
) -> HttpResponse:
    """Answer one page of `queryset` ordered by the unique `key` (prefix '-' for descending) with a next cursor.

    `prepare` takes the page's rows and returns them ready to serialize (one batched read for the page).
    """
    field = key.lstrip("-")
    after = decode_cursor(cursor, kind)
    if after is not None:
        queryset = queryset.filter(**{f"{field}__{'lt' if key.startswith('-') else 'gt'}": after})
    rows = list(queryset.order_by(key)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], field)) if more else None
    if prepare is not None:
        rows = prepare(rows)
    return resource(request, {"items": [serialize(row) for row in rows], "next_cursor": next_cursor})


def get_or_404(queryset, *, field: str, value, what: str, param: str | None = None):
    """Return the row whose `field` is `value`, or raise a 404 problem naming the input (`param`, else `field`)."""
    row = queryset.filter(**{field: value}).first()
    if row is None:
        raise Problem(404, "not_found", f"No {what} with {param or field} {value!r}.", field=param or field)
    return row


@contextmanager
def acting(request) -> Iterator:
    """Yield the token's user as the actor of one transaction, each audit row naming the token as provenance."""
    token = request.auth
    with audit_via(f"staff token {token.prefix}"), transaction.atomic():
        yield token.user


def client_address(request) -> str | None:
    """Return the exact client address the audit trail records."""
    return client_ip(request)
