"""Change requests: list, get, create (Idempotency-Key), approve, reject, cancel; and the 202 a write to a
flag that requires approval answers with. Every step goes through changes.services (audited)."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router

from automation.api.auth import staff
from automation.api.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    acting,
    client_address,
    get_or_404,
    page,
    require_if_match,
    resource,
)
from automation.api.idempotency import idempotent
from automation.api.schemas import (
    ChangeDecisionIn,
    ChangeRequestCreate,
    ChangeRequestOut,
    ChangeRequestPage,
)
from automation.api.serializers import change_request_data
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS
from changes import services
from changes.models import APPROVE_PERMISSION, ChangeRequest
from tenants.exceptions import ApprovalRequired

router = Router(tags=["changes"])
STATE_PATTERN = "^(" + "|".join(ChangeRequest.State.values) + ")$"

READ = staff("changes:read", "changes.view_changerequest")
ADD = staff("changes:write", "changes.add_changerequest")
# The service lets an author cancel their own request; anyone else needs changes.change_changerequest.
CANCEL = staff("changes:write", "changes.add_changerequest")
DECIDE = staff("changes:approve", APPROVE_PERMISSION)


def change_rows():
    return ChangeRequest.objects.select_related("tenant", "author", "approved_by", "closed_by")


def change_or_404(change_id: int, *, lock: bool = False) -> ChangeRequest:
    rows = change_rows().select_for_update(of=("self",)) if lock else change_rows()
    return get_or_404(rows, field="pk", value=change_id, what="change request", param="change_id")


def _answer(request, change: ChangeRequest, **kwargs) -> HttpResponse:
    return resource(request, change_request_data(change_rows().get(pk=change.pk)), **kwargs)


def change_requested(request, refusal: ApprovalRequired, actor) -> HttpResponse:
    """Answer 202 with the change request a refused write to a flag requiring approval became."""
    change = services.change_request_create(
        operation=refusal.operation, params=refusal.params, author=actor, ip=client_address(request)
    )
    return _answer(request, change, status=202, headers={"Location": f"/api/v1/admin/changes/{change.pk}"})


@router.get(
    "/changes",
    auth=READ,
    response={200: ChangeRequestPage, **ERRORS},
    summary="List change requests, newest first (cursor pages)",
)
def changes_list(
    request,
    state: str | None = Query(None, pattern=STATE_PATTERN, description="Only requests in this state."),
    operation: str | None = Query(None, max_length=64),
    flag: str | None = Query(None, max_length=64, description="A flag key."),
    tenant: str | None = Query(None, max_length=50, description="A tenant slug."),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = change_rows()
    for name, value in (("state", state), ("operation", operation), ("flag_key", flag), ("tenant__slug", tenant)):
        if value is not None:
            rows = rows.filter(**{name: value})
    return page(request, rows, key="-id", cursor=cursor, limit=limit, serialize=change_request_data, kind=int)


@router.get(
    "/changes/{change_id}",
    auth=READ,
    response={200: ChangeRequestOut, 304: None, **ERRORS},
    summary="Get a change request (its ETag is what approve, reject and cancel name in If-Match)",
)
def change_get(request, change_id: int):
    return resource(request, change_request_data(change_or_404(change_id)))


@router.post(
    "/changes",
    auth=ADD,
    response={201: ChangeRequestOut, **WRITE_ERRORS},
    summary="Schedule a change, or ask for approval of one (Idempotency-Key)",
    description=(
        "Checked at once by applying it in a rolled-back transaction: a change that could not apply now "
        "is a 422 naming the field. A flag that requires approval makes it pending_approval; otherwise it is "
        "scheduled for apply_at, or applied now without one. The author needs the permission of the change."
    ),
)
def change_create(request, payload: ChangeRequestCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        with acting(request) as actor:
            change = services.change_request_create(
                operation=payload.operation,
                params=payload.params,
                apply_at=payload.apply_at,
                revert_at=payload.revert_at,
                reason=payload.reason,
                author=actor,
                ip=client_address(request),
            )
        return _answer(request, change, status=201, headers={"Location": f"{request.path}/{change.pk}"})

    return idempotent(request, create)


def _step(request, change_id: int, service, **kwargs) -> HttpResponse:
    with acting(request) as actor:
        change = change_or_404(change_id, lock=True)
        require_if_match(request, change_request_data(change))
        change = service(change=change, actor=actor, ip=client_address(request), **kwargs)
    return _answer(request, change)


@router.post(
    "/changes/{change_id}/approve",
    auth=DECIDE,
    response={200: ChangeRequestOut, **WRITE_ERRORS},
    summary="Approve another user's change request; it applies now unless its apply_at is ahead",
)
def change_approve(request, change_id: int, if_match: str | None = IF_MATCH):
    return _step(request, change_id, services.change_approve)


@router.post(
    "/changes/{change_id}/reject",
    auth=DECIDE,
    response={200: ChangeRequestOut, **WRITE_ERRORS},
    summary="Reject a change request pending approval",
)
def change_reject(request, change_id: int, payload: ChangeDecisionIn, if_match: str | None = IF_MATCH):
    return _step(request, change_id, services.change_reject, reason=payload.reason)


@router.post(
    "/changes/{change_id}/cancel",
    auth=CANCEL,
    response={200: ChangeRequestOut, **WRITE_ERRORS},
    summary="Cancel a change request that has not applied, or the pending revert of one that has",
)
def change_cancel(request, change_id: int, payload: ChangeDecisionIn, if_match: str | None = IF_MATCH):
    return _step(request, change_id, services.change_cancel, reason=payload.reason)
