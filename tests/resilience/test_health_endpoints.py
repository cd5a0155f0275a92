"""/healthz and /readyz, including the answer while Redis is down."""

import pytest
from django.db import OperationalError, connection


def test_healthz_touches_nothing(client, redis_server):
    # No django_db mark: any query would raise. Redis down must not matter either.
    redis_server.kill()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_dependency_with_timings(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"] == {
        "name": "redis",
        "ok": True,
        "status": "ok",
        "ms": body["checks"]["redis"]["ms"],
        "detail": {"pong": True},
    }
    assert body["checks"]["redis"]["ms"] >= 0


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down_and_recovers(client, redis_server):
    redis_server.kill()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["status"] == "fail"
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["status"] == "ok"

    redis_server.start()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_fails(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("database is unreachable")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response.json()["checks"]["database"]["error"] == "OperationalError"


def test_readyz_rejects_writes(client):
    assert client.post("/readyz").status_code == 405


WRITE_REFUSALS = {
    "oom": ("OutOfMemoryError", "maxmemory"),
    "readonly": ("ReadOnlyError", "read-only replica"),
    "misconf": ("RedisWritesStopped", "background save"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("mode", list(WRITE_REFUSALS))
def test_readyz_reports_redis_refusing_writes_as_degraded_with_the_reason(client, redis_refusing_writes, mode):
    error_class, words = WRITE_REFUSALS[mode]
    with redis_refusing_writes(mode):
        response = client.get("/readyz")
    # 200: every replica shares this Redis, so failing readiness would take all of them out.
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded" and body["failed"] == [] and body["degraded"] == ["redis"]
    redis = body["checks"]["redis"]
    assert redis["status"] == "degraded" and redis["ok"] is True
    assert redis["error"] == error_class
    assert "refuses writes" in redis["reason"] and words in redis["reason"]
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_readyz_write_probe_is_rate_limited_and_sees_recovery(client, redis_refusing_writes, redis_client):
    from resilience.selectors import write_probe_forget

    def set_calls() -> int:
        return redis_client.info("commandstats").get("cmdstat_lpushx", {}).get("calls", 0)

    before = set_calls()
    for _ in range(5):
        assert client.get("/readyz").json()["status"] == "ok"
    assert set_calls() - before == 1, "one write probe per interval, not one per request"
    assert redis_client.dbsize() == 0, "the probe stores nothing"
    with redis_refusing_writes("oom"):
        write_probe_forget()  # the interval has passed
        assert client.get("/readyz").json()["status"] == "degraded"
    write_probe_forget()
    assert client.get("/readyz").json()["status"] == "ok"


@pytest.mark.django_db
def test_readyz_database_failure_names_the_class_never_connection_details(client, monkeypatch):
    # The driver's own words (psycopg's, as seen when the database is renamed); the real
    # outage against PostgreSQL under gunicorn is tests/faults/test_database_outage.py.
    message = (
        'connection failed: connection to server at "10.1.2.3", port 6543 failed: '
        'FATAL:  database "tenants_prod" does not exist'
    )

    def broken_cursor(*args, **kwargs):
        raise OperationalError(message)

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["error"] == "OperationalError"
    for detail in ("10.1.2.3", "6543", "tenants_prod", "FATAL"):
        assert detail not in response.content.decode()
