"""Redis SIGKILLed, restarted from its AOF, and paused (SIGSTOP/SIGCONT) under gunicorn (2 workers).

No request answers 500; the API keeps answering (from the database, fail-open) while
Redis is gone; a session and the usage counted before the kill are back after the AOF
replay; a paused Redis costs bounded waits, not hung workers.
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from tests.faults.harness import wait_for

PASSWORD = "demo-pass-123"


@pytest.fixture(scope="module")
def app(stack):
    return stack.app()


def _usage_total(stack) -> int:
    client = redis.Redis(port=stack.redis.port, decode_responses=True)
    try:
        return sum(int(client.hget(name, "requests") or 0) for name in client.scan_iter("agentapi:usage:*"))
    finally:
        client.close()


def _traffic(stack, app, owner, bearer, n: int) -> list[tuple[str, int, float]]:
    """Send n rounds of API, portal and /readyz requests; return (what, status, seconds) for each."""
    api = stack.client(app)
    answers = []
    for _ in range(n):
        for what, client, path, headers in (
            ("api", api, "/api/v1/bootstrap", bearer),
            ("portal", owner, "/portal/t/acme/", {}),
            ("readyz", api, "/readyz", {}),
        ):
            started = time.monotonic()
            status = client.request("GET", path, headers=headers)[0]
            answers.append((what, status, time.monotonic() - started))
    return answers


def _signed_in(stack, app, cookies: dict) -> bool:
    # A fresh browser with the saved cookie each time: a page that found the session unreadable
    # (a worker whose Redis breaker is still open) deletes the cookie, not the session.
    client = stack.client(app)
    client.cookies = dict(cookies)
    return client.request("GET", "/portal/t/acme/")[0] == 200


def test_sigkill_then_restart_from_aof_loses_no_session_and_no_count(stack, app):
    owner = stack.client(app)
    assert owner.sign_in("/portal/login/", "acme-owner", PASSWORD) == 302
    bearer = {"Authorization": f"Bearer {stack.api_key('acme')}"}
    before = _traffic(stack, app, owner, bearer, 5)
    assert {status for what, status, _ in before if what != "readyz"} == {200}
    counted = _usage_total(stack)
    assert counted >= 5
    # The same session in a browser that sends nothing during the outage (the visitor's own
    # cookie is dropped when a page finds the session unreadable: the session engine's concern).
    saved = dict(owner.cookies)

    stack.redis.kill()
    during = _traffic(stack, app, owner, bearer, 6)
    stack.redis.restart_from_aof()

    assert not [a for a in during if a[1] >= 500 and a[1] != 503], during
    assert {status for what, status, _ in during if what == "api"} == {200}, "fail-open: served from the database"
    assert {status for what, status, _ in during if what == "readyz"} == {503}
    # The session and the counts were in the AOF (appendfsync always): nothing acknowledged is lost.
    wait_for(lambda: _signed_in(stack, app, saved), "the owner's session to be read again")
    assert _usage_total(stack) >= counted
    wait_for(lambda: json.loads(owner.request("GET", "/readyz")[2])["status"] == "ok", "/readyz ok")


def test_sigstop_partition_costs_bounded_waits_and_no_500(stack, app):
    owner = stack.client(app)
    # A worker whose Redis breaker opened in an earlier test refuses sign-ins until it closes (5 s).
    wait_for(lambda: owner.sign_in("/portal/login/", "acme-owner", PASSWORD) == 302, "sign-in to work")
    bearer = {"Authorization": f"Bearer {stack.api_key('acme')}"}
    saved = dict(owner.cookies)
    with stack.redis.paused():
        during = _traffic(stack, app, owner, bearer, 4)
    assert not [a for a in during if a[1] >= 500 and a[1] != 503], during
    # REDIS_CONNECTION_TIMEOUT=1s bounds each Redis call, and the Redis breaker stops waiting after a few.
    assert max(seconds for _, _, seconds in during) < 10, during
    wait_for(
        lambda: "RateLimit-Limit" in stack.client(app).request("GET", "/api/v1/bootstrap", headers=bearer)[1],
        "the API to be limited and counted through Redis again",
    )
    wait_for(lambda: _signed_in(stack, app, saved), "the owner's session to be read again")
