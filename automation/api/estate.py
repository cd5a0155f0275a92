"""Flags and tenants as code over HTTP: export the document, plan an import (the diff), apply it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from ninja import Body, Query, Router, Schema

from agentapi_admin.openapi import problems
from automation.api.auth import staff
from automation.api.http import Problem, acting, require_if_match, resource
from automation.api.tenants import IF_MATCH
from tenants.services import flagsdoc
from tenants.services.flagsdoc import (
    IMPORT_PERMISSIONS,
    DocumentError,
    flags_document_export,
    flags_document_parse,
)

router = Router(tags=["flags-document"])

READ_PERMISSIONS = ("tenants.view_flag", "tenants.view_segment", "tenants.view_plan", "tenants.view_tenant")
READ = staff("tenants:read", *READ_PERMISSIONS)
APPLY = staff(("flags:write", "plans:write", "tenants:write"), *IMPORT_PERMISSIONS)
DOCUMENT = Body(..., description="A flags document, version 2 or 1 (docs/automation.md), as JSON.")
PRUNE = Query(False, description="Archive flags, delete segments and clear overrides the document leaves out.")


class ImportOut(Schema):
    changes: int
    applied: bool
    diff: list[str]


@contextmanager
def _document_errors() -> Iterator[None]:
    """Turn a DocumentError (its message starts with the path at fault) into a 422 naming that path."""
    try:
        yield
    except DocumentError as exc:
        raise Problem(422, "invalid_document", exc.message, field=exc.message.split(":", 1)[0]) from None


def _answer(request, changes, *, applied: bool):
    body = {"changes": len(changes), "applied": applied, "diff": [change.line() for change in changes]}
    # The ETag is the estate's as it is now: send it back in If-Match to apply exactly what was planned.
    return resource(request, body, version=flags_document_export())


@router.get(
    "/flags-document",
    auth=READ,
    response={200: dict[str, Any], 304: None, **problems(400, 401, 403, 429, 503)},
    summary="Every segment, flag, plan, tenant and override as one version-2 document (flags_export)",
)
def flags_document_get(request):
    return resource(request, flags_document_export())


@router.post(
    "/flags-document/plan",
    auth=READ,
    response={200: ImportOut, **problems(400, 401, 403, 422, 429, 503)},
    summary="The diff an import of the document would apply; changes nothing (flags_import --dry-run)",
)
def flags_document_plan(request, document: dict[str, Any] = DOCUMENT, prune: bool = PRUNE):
    # The services run as in an apply, in a transaction rolled back, so their own checks are real.
    with _document_errors(), acting(request) as actor:
        parsed = flags_document_parse(document)
        changes = flagsdoc.flags_document_plan(parsed, prune=prune)
        try:
            flagsdoc.flags_document_apply(parsed, actor=actor, prune=prune)
        finally:
            transaction.set_rollback(True)
    return _answer(request, changes, applied=False)


@router.post(
    "/flags-document/apply",
    auth=APPLY,
    response={200: ImportOut, **problems(400, 401, 403, 412, 422, 428, 429, 503)},
    summary="Apply the document in one audited transaction (flags_import); If-Match: the ETag of the plan",
    description="Idempotent: a second apply reports 0 changes and writes nothing.",
)
def flags_document_apply(
    request,
    document: dict[str, Any] = DOCUMENT,
    prune: bool = PRUNE,
    if_match: str | None = IF_MATCH,
):
    with _document_errors(), acting(request) as actor:
        parsed = flags_document_parse(document)
        require_if_match(request, flags_document_export())
        changes = flagsdoc.flags_document_apply(parsed, actor=actor, prune=prune)
    return _answer(request, changes, applied=bool(changes))
