"""`GET /api/v1/stream`: the tenant's changes as Server-Sent Events.

Every version bump of a tenant is an entry of its capped Redis stream (`tenants.cache`);
a connected client gets a `change` event (the new ETag and cache version) for each, with
the stream entry's id as the event id, so a reconnect with `Last-Event-ID` resumes where
it stopped. Before each event the key is checked again through the gateway: a revoked
key gets `revoked`, a suspended tenant `suspended`, and the stream ends. Serve it from an
ASGI server (the compose `stream` service runs uvicorn): a connection is a coroutine
waiting on Redis, not a worker thread.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

from agentapi_admin.problems import as_problem
from resilience.connection import get_async_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from tenants.api.views import ApiError, TenantKey, error_response
from tenants.keys import stream_key

_LAST_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_AUTH = TenantKey(field="body", scope="config:read")
_KEY_GONE = {"missing_api_key", "invalid_api_key", "revoked_api_key", "expired_api_key"}

# Open streams in this process, in total and per tenant (one event loop: no lock needed).
_open: Counter = Counter()


class _Slot:
    """One stream's place in the per-process and per-tenant counts, taken at once, given back exactly once."""

    def __init__(self, tenant_id: str, tenant_slug: str) -> None:
        self.tenant_id = tenant_id
        self.tenant_slug = tenant_slug
        self.held = True
        _open["*"] += 1
        _open[tenant_id] += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            _open["*"] -= 1
            _open[self.tenant_id] -= 1


class EventStreamResponse(StreamingHttpResponse):
    """A text/event-stream response that gives its slot back when the server closes it (sent, failed or aborted)."""

    def __init__(self, events, slot: _Slot) -> None:
        super().__init__(events, content_type="text/event-stream")
        self.slot = slot
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # proxies must pass each event through at once

    def close(self) -> None:
        self.slot.release()
        super().close()


def _event(name: str, data: dict, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id else []
    lines += [f"event: {name}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return ("\n".join(lines) + "\n\n").encode()


def _document(result) -> dict:
    body = json.loads(result.payload) if result.payload else {}
    return {"etag": result.etag, "cache_version": body.get("cache_version")}


async def _check(request: HttpRequest) -> tuple[str, dict]:
    """Return ("ok", document info) or the event that ends the stream and its data."""
    try:
        result = await sync_to_async(_AUTH)(request)
    except ApiError as exc:
        if exc.error in _KEY_GONE:
            return "revoked", {"error": exc.error, "detail": exc.detail}
        if exc.error in ("tenant_suspended", "tenant_deleted"):
            return "suspended", {"error": exc.error, "detail": exc.detail}
        return "unavailable", {"error": exc.error, "detail": exc.detail or "Poll GET /api/v1/bootstrap instead."}
    return "ok", _document(result)


async def _events(request: HttpRequest, slot: _Slot, first: dict, last_event_id: str):
    heartbeat_ms = int(settings.TENANTS_STREAM_HEARTBEAT * 1000)
    key = stream_key(slot.tenant_slug, slot.tenant_id)
    client = None
    try:
        yield f"retry: {heartbeat_ms}\n\n".encode()
        yield _event("ready", first)
        client = get_async_redis()
        cursor = last_event_id
        if not cursor:
            # Start after the newest entry that exists now: nothing committed from here on is missed.
            newest = await client.xrevrange(key, count=1)
            cursor = newest[0][0].decode() if newest else "0-0"
        while True:
            reply = await client.xread({key: cursor}, block=heartbeat_ms, count=100)
            if not reply:
                yield b": heartbeat\n\n"
                continue
            cursor = reply[0][1][-1][0].decode()  # several bumps in a row are one change
            outcome, data = await _check(request)
            if outcome != "ok":
                yield _event(outcome, data)
                return
            yield _event("change", data, cursor)
    except REDIS_UNAVAILABLE_ERRORS as exc:
        detail = f"The change stream is unavailable ({type(exc).__name__}); poll GET /api/v1/bootstrap meanwhile."
        yield _event("unavailable", {"error": "stream_unavailable", "detail": detail})
    finally:
        slot.release()
        if client is not None:
            await client.aclose()


async def stream_view(request: HttpRequest) -> HttpResponseBase:
    """Authenticate the tenant key, then stream its tenant's changes as Server-Sent Events."""
    if request.method != "GET":
        return error_response(
            405, "method_not_allowed", "The change stream is read with GET.", headers={"Allow": "GET"}
        )
    last_event_id = request.headers.get("Last-Event-ID", "").strip()
    if last_event_id and not _LAST_EVENT_ID.match(last_event_id):
        return error_response(
            400,
            "invalid_last_event_id",
            "Last-Event-ID must be an event id this stream sent (`<milliseconds>-<sequence>`), or absent.",
            field="Last-Event-ID",
        )
    try:
        result = await sync_to_async(_AUTH)(request)
    except ApiError as exc:
        if exc.response is not None:
            return as_problem(exc.response)
        return error_response(exc.status, exc.error, exc.detail, field=exc.field, headers=exc.headers)
    tenant_id = result.tenant_id
    if _open["*"] >= settings.TENANTS_STREAM_MAX_CONNECTIONS:
        return error_response(
            503,
            "stream_capacity",
            "This server holds as many change streams as it may; retry shortly or poll GET /api/v1/bootstrap.",
            headers={"Retry-After": "5"},
        )
    if _open[tenant_id] >= settings.TENANTS_STREAM_MAX_PER_TENANT:
        return error_response(
            429,
            "too_many_streams",
            f"This tenant already holds {settings.TENANTS_STREAM_MAX_PER_TENANT} change streams on this server; "
            "close one or share it between replicas.",
            headers={"Retry-After": "5"},
        )
    slot = _Slot(tenant_id, result.tenant_slug)
    return EventStreamResponse(_events(request, slot, _document(result), last_event_id), slot)
