"""Idempotency-Key on creates: the same key and body replay the first answer; another body is a 422."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import suppress

from django.http import HttpResponse

from automation.api.http import Problem
from automation.cache import idempotency_key
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

TTL = 24 * 3600  # how long an answer is replayed
PENDING_TTL = 60  # how long a first attempt holds its key while it runs
KEY_MAX_LENGTH = 255
REPLAYED_HEADERS = ("ETag", "Location")


def idempotent(request, create: Callable[[], HttpResponse], *, redact: tuple[str, ...] = ()) -> HttpResponse:
    """Run `create` once per (token, Idempotency-Key); replay its 2xx answer (minus `redact` members) for 24 h."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return create()
    if not 1 <= len(raw) <= KEY_MAX_LENGTH or not raw.isprintable():
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{KEY_MAX_LENGTH} printable characters, e.g. a UUID.",
            field="Idempotency-Key",
        )
    name = idempotency_key(request.auth.pk, hashlib.sha256(raw.encode()).hexdigest())
    fingerprint = _fingerprint(request)
    try:
        client = get_redis()
        stored = client.get(name)
        if stored is None and not client.set(
            name, json.dumps({"fingerprint": fingerprint, "state": "pending"}), nx=True, ex=PENDING_TTL
        ):
            stored = client.get(name) or json.dumps({"fingerprint": fingerprint, "state": "pending"})
    except REDIS_UNAVAILABLE_ERRORS:  # RedisDisabled among them
        raise _unavailable() from None
    if stored is not None:
        return _replay(json.loads(stored), fingerprint)
    try:
        response = create()
    except BaseException:
        _forget(client, name)
        raise
    if 200 <= response.status_code < 300:
        body = json.loads(response.content)
        for member in redact:
            body[member] = None
        record = {
            "fingerprint": fingerprint,
            "state": "done",
            "status": response.status_code,
            "body": body,
            "headers": {h: response[h] for h in REPLAYED_HEADERS if h in response},
        }
        # Without Redis the pending record expires; the create itself is committed and answered.
        with suppress(*REDIS_UNAVAILABLE_ERRORS):
            client.set(name, json.dumps(record), ex=TTL)
    else:
        _forget(client, name)
    return response


def _fingerprint(request) -> str:
    try:
        body = json.dumps(json.loads(request.body or b"null"), sort_keys=True)
    except ValueError:
        body = request.body.decode(errors="replace")
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: dict, fingerprint: str) -> HttpResponse:
    if record["fingerprint"] != fingerprint:
        raise Problem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with another request body or path; use a new key for a new request.",
            field="Idempotency-Key",
        )
    if record["state"] != "done":
        raise Problem(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still running; retry in a moment.",
            field="Idempotency-Key",
            headers={"Retry-After": "1"},
        )
    response = HttpResponse(json.dumps(record["body"]), status=record["status"], content_type="application/json")
    for name, value in record["headers"].items():
        response[name] = value
    response["Idempotency-Replayed"] = "true"
    return response


def _forget(client, name: str) -> None:
    with suppress(*REDIS_UNAVAILABLE_ERRORS):  # else the pending record expires by itself
        client.delete(name)


def _unavailable() -> Problem:
    return Problem(
        503,
        "idempotency_unavailable",
        "Idempotency-Key needs Redis, which is unreachable; retry shortly (or send the create without the key).",
        headers={"Retry-After": "1"},
    )
