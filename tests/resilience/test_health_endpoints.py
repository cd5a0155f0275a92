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
    assert "unreachable" in response.json()["checks"]["database"]["error"]


def test_readyz_rejects_writes(client):
    assert client.post("/readyz").status_code == 405
