"""Redis refusing writes under gunicorn (2 workers): full (OOM), a read-only replica, MISCONF.

Where a write is needed the answer is the 503 page (JSON for JSON clients), never a 500;
/readyz reports "degraded" with the reason on every worker; the service API follows
RATE_LIMIT_FAIL_MODE exactly as for an outage and logs that it does; redis_health exits 1.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.harness import wait_for
from tests.faults.redis_faults import MODES

PASSWORD = "demo-pass-123"
REASONS = {"oom": "OutOfMemoryError", "readonly": "ReadOnlyError", "misconf": "RedisWritesStopped"}


@pytest.fixture(scope="module")
def app(stack):
    return stack.app()


@pytest.fixture(scope="module")
def closed_app(stack):
    return stack.app(RATE_LIMIT_FAIL_MODE="closed")


def _readyz_all_degraded(stack, app, mode: str) -> bool:
    # Several calls so both workers answer; each probes writes at most once per 5 s.
    bodies = [json.loads(stack.client(app).request("GET", "/readyz")[2]) for _ in range(6)]
    return all(
        body["status"] == "degraded"
        and body["degraded"] == ["redis"]
        and body["checks"]["redis"]["error"] == REASONS[mode]
        and "Redis refuses writes" in body["checks"]["redis"]["reason"]
        for body in bodies
    )


@pytest.mark.parametrize("mode", MODES)
def test_sign_in_is_a_503_and_readyz_degraded_then_both_recover(stack, app, mode):
    with stack.redis.refusing_writes(mode):
        statuses = [stack.client(app).sign_in("/portal/login/", "acme-owner", PASSWORD) for _ in range(4)]
        wait_for(lambda: _readyz_all_degraded(stack, app, mode), f"/readyz degraded ({mode}) on every worker", 15)
        # Degraded, not failed: every replica shares this Redis.
        assert stack.client(app).request("GET", "/readyz")[0] == 200
    assert statuses == [503] * 4, statuses
    wait_for(lambda: stack.client(app).sign_in("/portal/login/", "acme-owner", PASSWORD) == 302, "sign-in to work")
    wait_for(lambda: json.loads(stack.client(app).request("GET", "/readyz")[2])["status"] == "ok", "/readyz ok", 15)


def test_sign_in_refused_by_a_full_redis_is_a_503_json_for_json_clients(stack, app):
    client = stack.client(app)
    client.request("GET", "/portal/login/")
    with stack.redis.refusing_writes("oom"):
        status, headers, body = client.request(
            "POST",
            "/portal/login/",
            body=f"username=acme-owner&password={PASSWORD}&csrfmiddlewaretoken={client.cookies['csrftoken']}".encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Referer": "https://127.0.0.1/portal/login/",
            },
        )
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert json.loads(body)["error"].endswith("_unavailable")


def test_api_follows_the_fail_mode_as_for_an_outage_and_says_so(stack, app, closed_app):
    bearer = {"Authorization": f"Bearer {stack.api_key('acme')}"}
    open_client, closed_client = stack.client(app), stack.client(closed_app)
    assert open_client.request("GET", "/api/v1/bootstrap", headers=bearer)[0] == 200
    with stack.redis.refusing_writes("oom"):
        opened = [open_client.request("GET", "/api/v1/bootstrap", headers=bearer) for _ in range(6)]
        closed = [closed_client.request("GET", "/api/v1/bootstrap", headers=bearer) for _ in range(6)]
    # open: answered from the database, without RateLimit headers (nothing could be counted).
    assert [status for status, _, _ in opened] == [200] * 6
    assert not any("RateLimit-Limit" in headers for _, headers, _ in opened)
    # closed: refused like during an outage, with a time to come back.
    assert [status for status, _, _ in closed] == [503] * 6
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in closed)
    assert "Redis refuses writes (OutOfMemoryError" in app.log_tail(200_000)
    assert "not rate limited and not counted" in app.log_tail(200_000)
    assert "RATE_LIMIT_FAIL_MODE=closed: answering 503" in closed_app.log_tail(200_000)
    assert open_client.request("GET", "/api/v1/bootstrap", headers=bearer)[1].get("RateLimit-Limit")


def test_redis_health_exits_1_and_the_health_page_shows_the_refusal(stack, app):
    admin = stack.client(app)
    assert admin.sign_in("/admin/login/", "admin", PASSWORD) == 302
    with stack.redis.refusing_writes("oom"):
        result = stack.manage("redis_health", check=False)
        status, _, body = admin.request("GET", "/admin/ops/redis/")
        twin = json.loads(admin.request("GET", "/admin/ops/redis/?format=json")[2])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Redis refuses writes (OutOfMemoryError)" in result.stdout + result.stderr
    assert status == 200 and b"Redis refuses writes (OutOfMemoryError)" in body
    assert (
        twin["writes"]
        == {
            "ok": False,
            "error": "OutOfMemoryError",
            "reason": twin["writes"]["reason"],
        }
        and "maxmemory" in twin["writes"]["reason"]
    )
    assert stack.manage("redis_health", check=False).returncode == 0
