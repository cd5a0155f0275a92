"""Segments: reusable audiences that flag rules target (list, get, create, update, delete)."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router

from automation.api.auth import staff
from automation.api.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Problem,
    acting,
    client_address,
    get_or_404,
    page,
    require_if_match,
    resource,
)
from automation.api.idempotency import idempotent
from automation.api.schemas import SegmentCreate, SegmentOut, SegmentPage, SegmentUpdate
from automation.api.serializers import segment_data
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS
from tenants.models import Segment
from tenants.services import flags as flag_services

router = Router(tags=["segments"])

READ = staff("tenants:read", "tenants.view_segment")
ADD = staff("flags:write", "tenants.add_segment")
CHANGE = staff("flags:write", "tenants.change_segment")
DELETE = staff("flags:write", "tenants.delete_segment")


def _segment_or_404(key: str, *, lock: bool = False) -> Segment:
    rows = Segment.objects.select_for_update() if lock else Segment.objects.all()
    return get_or_404(rows, field="key", value=key, what="segment")


@router.get("/segments", auth=READ, response={200: SegmentPage, **ERRORS}, summary="List segments (cursor pages)")
def segments_list(
    request,
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    return page(request, Segment.objects.all(), key="key", cursor=cursor, limit=limit, serialize=segment_data)


@router.get("/segments/{key}", auth=READ, response={200: SegmentOut, 304: None, **ERRORS}, summary="Get a segment")
def segment_get(request, key: str):
    return resource(request, segment_data(_segment_or_404(key)))


@router.post(
    "/segments",
    auth=ADD,
    response={201: SegmentOut, **WRITE_ERRORS},
    summary="Define a segment (Idempotency-Key)",
    description="Conditions all hold for a tenant and subject in the segment; a bad one is 422 naming its path.",
)
def segment_create(request, payload: SegmentCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        if Segment.objects.filter(key=payload.key).exists():
            raise Problem(409, "conflict", f"A segment with key {payload.key!r} already exists.", field="key")
        with acting(request) as actor:
            segment = flag_services.segment_create(**payload.dict(), actor=actor, ip=client_address(request))
        headers = {"Location": f"{request.path}/{segment.key}"}
        return resource(request, segment_data(segment), status=201, headers=headers)

    return idempotent(request, create)


@router.patch(
    "/segments/{key}",
    auth=CHANGE,
    response={200: SegmentOut, **WRITE_ERRORS},
    summary="Update a segment (tenants whose flags use it are re-evaluated)",
)
def segment_update(request, key: str, payload: SegmentUpdate, if_match: str | None = IF_MATCH):
    fields = payload.dict(exclude_unset=True)
    if not fields:
        raise Problem(422, "empty_update", "Send at least one of name, description, conditions.", field="body")
    nulls = sorted(name for name, value in fields.items() if value is None)
    if nulls:
        raise Problem(422, "invalid_request", f"{nulls[0]} cannot be null.", field=nulls[0])
    with acting(request) as actor:
        segment = _segment_or_404(key, lock=True)
        require_if_match(request, segment_data(segment))
        flag_services.segment_update(segment=segment, actor=actor, ip=client_address(request), **fields)
    return resource(request, segment_data(Segment.objects.get(pk=segment.pk)))


@router.delete(
    "/segments/{key}",
    auth=DELETE,
    response={204: None, **WRITE_ERRORS},
    summary="Delete a segment no flag rule uses (409 segment_in_use names the flags that do)",
)
def segment_delete(request, key: str, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        segment = _segment_or_404(key, lock=True)
        require_if_match(request, segment_data(segment))
        users = flag_services.segment_users(segment)
        if users:
            raise Problem(
                409,
                "segment_in_use",
                f"Segment {segment.key!r} is used by the rules of {', '.join(users)}: remove those rules first.",
                field="key",
                flags=users,
            )
        flag_services.segment_delete(segment=segment, actor=actor, ip=client_address(request))
    return HttpResponse(status=204)
