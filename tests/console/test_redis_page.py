"""The Redis health page and its JSON twin."""

import pytest

from resilience.health.selectors import health_state_reset
from tests.resilience.health.upstash_standin import UpstashStandIn


@pytest.fixture(autouse=True)
def _fresh_state():
    health_state_reset()
    yield
    health_state_reset()


def test_page_shows_the_snapshot(client, viewer, redis_client):
    redis_client.set("agentapi:rl:user:-:1", 1)
    client.force_login(viewer)
    html = client.get("/admin/ops/redis/").content.decode()
    for text in (
        "PING p50",
        "Server",
        "Memory",
        "Traffic",
        "Persistence",
        "Keys per app area",
        "Rate limits",
        "Keyspace",
        "Slowlog: top 10 by duration",
        "App connection pools",
        "standalone",
        "primary",
    ):
        assert text in html
    data = client.get("/admin/ops/redis/", {"format": "json"}).json()
    assert data["ok"] is True and data["server"]["role"] == "primary"


def test_eviction_policy_warning_is_shown(client, viewer, redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        client.force_login(viewer)
        html = client.get("/admin/ops/redis/").content.decode()
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert "can evict sessions" in html and "volatile-lru" in html


def test_redis_down_page_renders_and_json_says_503(client, viewer, redis_server, settings):
    # Sessions in the database: with Redis sessions nobody can be logged in while Redis is down.
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    client.force_login(viewer)
    redis_server.kill()
    response = client.get("/admin/ops/redis/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Redis is unreachable" in html and "Failing since" in html and "ConnectionError" in html
    twin = client.get("/admin/ops/redis/", {"format": "json"})
    assert twin.status_code == 503 and twin.json()["ok"] is False and twin.json()["failing_since"]


def test_rest_provider_hidden_fields_show_na(client, viewer, redis_server, settings):
    with UpstashStandIn(redis_server.port, token="t") as standin:
        settings.RESILIENCE_REDIS_PROTOCOL = "rest"
        settings.RESILIENCE_UPSTASH_REST_URL = standin.url
        settings.RESILIENCE_UPSTASH_REST_TOKEN = "t"
        client.force_login(viewer)
        html = client.get("/admin/ops/redis/").content.decode()
    assert "Not available from this server" in html and "n/a" in html and "rest" in html
    assert "No pool: probing through the REST API." in html


@pytest.mark.parametrize(("mode", "error"), [("oom", "OutOfMemoryError"), ("misconf", "RedisWritesStopped")])
def test_redis_refusing_writes_is_shown_on_the_page_and_its_twin(
    client, viewer, settings, redis_refusing_writes, mode, error
):
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"  # the session itself is not what is tested
    client.force_login(viewer)
    with redis_refusing_writes(mode):
        response = client.get("/admin/ops/redis/")
        twin = client.get("/admin/ops/redis/", {"format": "json"}).json()
    assert response.status_code == 200
    html = response.content.decode()
    assert "Redis refuses writes" in html and error in html
    assert twin["writes"]["ok"] is False and twin["writes"]["error"] == error
    assert any("Redis refuses writes" in warning for warning in twin["warnings"])
