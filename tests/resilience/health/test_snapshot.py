"""The Redis health snapshot against real redis-server processes (and a REST stand-in)."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis
from django.conf import settings

from agentapi_admin.redis_process import RedisProcess, find_redis_server, free_port
from resilience.health.probes import NativeProbe, RestProbe
from resilience.health.selectors import health_state_reset, key_family, redis_health_snapshot
from tests.resilience.health.upstash_standin import UpstashStandIn

P = "agentapi"


@pytest.fixture(autouse=True)
def _fresh_state():
    health_state_reset()
    yield
    health_state_reset()


def _fill_families(client, n=3):
    with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            for family in ("session", "sessidx", "rl", "cb", "flags", "apikey", "usage", "cache", "lock"):
                pipe.set(f"{P}:{family}:{i}", 1)
        pipe.set("somebody-else:key", 1)
        pipe.set(f"{P}:newthing:1", 1)
        pipe.execute()


def test_healthy_snapshot_has_every_section(redis_client, redis_server):
    _fill_families(redis_client)
    snap = redis_health_snapshot()
    assert snap["ok"] is True and snap["error"] is None and snap["transport"] == "native"
    assert snap["latency"]["samples"] == 5 and 0 < snap["latency"]["p50_ms"] <= snap["latency"]["max_ms"]
    assert snap["server"]["version"] == redis_client.info("server")["redis_version"]
    assert (snap["server"]["mode"], snap["server"]["role"], snap["server"]["tls"]) == ("standalone", "primary", False)
    assert snap["server"]["uptime_seconds"] >= 0
    assert snap["memory"]["used"] > 0 and snap["memory"]["policy"] == "noeviction"
    assert snap["memory"]["policy_warning"] is None and snap["warnings"] == []
    assert snap["clients"]["connected"] >= 1 and snap["clients"]["max"] > 0
    assert snap["keys"]["keyspace"]["db0"]["keys"] == 29
    assert snap["persistence"]["aof_enabled"] is False and snap["persistence"]["rdb_last_save_status"] == "ok"
    assert isinstance(snap["slowlog"], list)
    areas = {f["family"]: f for f in snap["areas"]["families"]}
    assert snap["areas"]["complete"] is True and snap["areas"]["sampled"] == 29
    assert {k: v["sampled"] for k, v in areas.items()} == {
        **{family: 3 for family in ("session", "sessidx", "rl", "cb", "flags", "apikey", "usage", "cache", "lock")},
        "foreign": 1,
        "other:newthing": 1,
    }
    assert areas["rl"]["label"] == "Rate limits" and areas["other:newthing"]["label"] == "Other (newthing)"
    assert snap["unavailable"] == []
    pools = snap["pools"]
    assert sorted(a for p in pools for a in p["aliases"]) == ["default", "sessions"]
    assert all(p["max"] == settings.RESILIENCE_REDIS_MAX_POOL_SIZE for p in pools)


def test_key_families_follow_the_prefix():
    assert key_family(f"{P}:rl:user:-:7") == "rl"
    assert key_family(f"{P}:session:1:django.contrib.sessions.cacheabc") == "session"
    assert key_family("other:rl:1") == "foreign"


def test_area_sample_is_capped_and_extrapolated(redis_client, settings):
    settings.RESILIENCE_HEALTH_SCAN_SAMPLE = 200
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(3000):
            pipe.set(f"{P}:{'rl' if i % 3 else 'session'}:{i}", 1)
        pipe.execute()
    redis_client.config_resetstat()
    areas = redis_health_snapshot()["areas"]
    assert areas["sampled"] == 200 and areas["complete"] is False and areas["dbsize"] == 3000
    estimated = {f["family"]: f["estimated"] for f in areas["families"]}
    assert sum(estimated.values()) == pytest.approx(3000, abs=30)
    assert estimated["rl"] == pytest.approx(2000, rel=0.25)
    stats = redis_client.info("commandstats")
    assert "cmdstat_keys" not in stats and stats["cmdstat_scan"]["calls"] <= 3


def test_allkeys_policy_is_warned_about(redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    redis_client.config_set("maxmemory", "100mb")
    try:
        snap = redis_health_snapshot()
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", "0")
    assert snap["memory"]["policy"] == "allkeys-lru" and snap["memory"]["maxmemory"] == 100 * 1024 * 1024
    assert "can evict sessions" in snap["memory"]["policy_warning"]
    assert snap["warnings"] == [snap["memory"]["policy_warning"]]
    assert 0 < snap["memory"]["used_ratio"] < 1


def test_ops_and_hit_ratio_come_from_two_samples(redis_client):
    redis_client.set("present", 1)
    first = redis_health_snapshot()["throughput"]
    assert first["interval_seconds"] == pytest.approx(0.25, abs=0.1)  # first look: a second sample 250 ms later
    for _ in range(30):
        redis_client.get("present")
    for _ in range(10):
        redis_client.get("absent")
    time.sleep(0.6)
    second = redis_health_snapshot()["throughput"]
    assert second["interval_seconds"] >= 0.5
    assert (second["hits"], second["misses"], second["hit_ratio"]) == (30, 10, 0.75)
    assert second["ops_per_sec"] >= 40 / second["interval_seconds"]
    # A poll inside the minimum gap reuses the last rates rather than dividing by ~0.
    assert redis_health_snapshot()["throughput"] == second


def test_server_restart_restarts_the_sampling(redis_client, redis_server):
    redis_health_snapshot()
    redis_server.restart()
    assert redis_health_snapshot()["throughput"]["interval_seconds"] == pytest.approx(0.25, abs=0.1)


def test_slowlog_top_10_by_duration_without_values(redis_client):
    redis_client.config_set("slowlog-log-slower-than", 0)
    try:
        redis_client.set(f"{P}:session:1:django.contrib.sessions.cachesecretsessionkey", "pickled-data")
        for i in range(20):
            redis_client.set(f"k{i}", "value-that-must-not-show")
        slowlog = redis_health_snapshot()["slowlog"]
    finally:
        redis_client.config_set("slowlog-log-slower-than", 10000)
    assert len(slowlog) == 10
    durations = [e["duration_ms"] for e in slowlog]
    assert durations == sorted(durations, reverse=True)
    text = " ".join(e["command"] for e in slowlog)
    assert "secretsessionkey" not in text and "value-that-must-not-show" not in text and "pickled-data" not in text


def test_redis_down_is_reported_with_since_when(redis_server):
    assert redis_health_snapshot()["ok"] is True
    redis_server.kill()
    first = redis_health_snapshot()
    assert first["ok"] is False and "ConnectionError" in first["error"]
    assert first["failing_since"] is not None and first["last_ok"] is not None
    time.sleep(1.1)
    assert redis_health_snapshot()["failing_since"] == first["failing_since"]
    redis_server.start()
    recovered = redis_health_snapshot()
    assert recovered["ok"] is True and recovered["failing_since"] is None


def test_disabled_redis_says_so(settings):
    settings.RESILIENCE_REDIS_ENABLED = False
    snap = redis_health_snapshot()
    assert snap["ok"] is False and snap["transport"] == "disabled" and "REDIS_ENABLE=false" in snap["error"]


def test_a_replica_is_reported_with_its_primary(redis_server):
    replica = RedisProcess(extra_args=["--replicaof", "127.0.0.1", str(redis_server.port)]).start()
    try:
        client = redis.Redis(port=replica.port)
        deadline = time.monotonic() + 10
        while client.info("replication")["master_link_status"] != "up" and time.monotonic() < deadline:
            time.sleep(0.05)
        server = redis_health_snapshot(NativeProbe(client))["server"]
        client.close()
    finally:
        replica.stop()
    assert server["role"] == "replica"
    assert server["primary"] == {"host": "127.0.0.1", "port": redis_server.port, "link_status": "up"}


def test_a_sentinel_monitored_primary_is_sentinel_managed(redis_server, tmp_path):
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor agentapi 127.0.0.1 {redis_server.port} 1\n"
        "sentinel down-after-milliseconds agentapi 5000\n"
    )
    sentinel = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        mode = None
        while time.monotonic() < deadline:
            mode = redis_health_snapshot()["server"]["mode"]
            if mode == "sentinel-managed":
                break
            time.sleep(0.2)
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
    assert mode == "sentinel-managed"


# ------------------------------------------------------------------- REST API
@pytest.fixture
def upstash(redis_server, settings):
    with UpstashStandIn(redis_server.port, token="tok-123") as standin:
        settings.RESILIENCE_REDIS_PROTOCOL = "rest"
        settings.RESILIENCE_UPSTASH_REST_URL = standin.url
        settings.RESILIENCE_UPSTASH_REST_TOKEN = "tok-123"
        yield standin


def test_rest_probe_reports_what_the_provider_shows_and_na_for_the_rest(upstash, redis_client):
    _fill_families(redis_client, n=2)
    snap = redis_health_snapshot()
    assert snap["ok"] is True and snap["transport"] == "rest" and snap["target"] == upstash.url
    assert snap["server"]["version"] == redis_client.info("server")["redis_version"]
    assert snap["server"]["tls"] is False  # http:// stand-in; https in production
    assert snap["server"]["mode"] is None  # CLIENT LIST hidden: cannot tell whether a Sentinel watches it
    assert snap["slowlog"] is None and snap["clients"]["max"] is None
    assert snap["memory"]["used"] > 0 and snap["keys"]["keyspace"]["db0"]["keys"] == 20
    assert snap["areas"]["sampled"] == 20 and snap["pools"] == []
    assert {u["part"] for u in snap["unavailable"]} == {
        "config maxmemory-policy",
        "config maxclients",
        "client list",
        "slowlog",
    }
    assert all("not available" in u["error"] for u in snap["unavailable"])
    assert ["PING"] in upstash.requests and ["INFO"] in upstash.requests


def test_rest_client_speaks_the_documented_format(upstash):
    client = RestProbe().client
    assert client.execute("SET", "foo", "bar") == "OK"
    assert client.execute("GET", "foo") == "bar"
    results = client.pipeline([["INCR", "n"], ["INCR", "foo"], ["GET", "n"]])
    assert results[0] == 1 and "not an integer" in str(results[1]) and results[2] == "1"


def test_rest_bad_token_is_a_clear_failure(upstash, settings):
    settings.RESILIENCE_UPSTASH_REST_TOKEN = "wrong"
    snap = redis_health_snapshot()
    assert snap["ok"] is False and "401" in snap["error"] and "UPSTASH_REDIS_REST_TOKEN" in snap["error"]


def test_rest_endpoint_down_is_reported(settings):
    settings.RESILIENCE_REDIS_PROTOCOL = "rest"
    settings.RESILIENCE_UPSTASH_REST_URL = f"http://127.0.0.1:{free_port()}"
    settings.RESILIENCE_UPSTASH_REST_TOKEN = "tok"
    snap = redis_health_snapshot()
    assert snap["ok"] is False and "REST API unreachable" in snap["error"] and snap["failing_since"]


def test_sentinel_settings_mean_sentinel_managed(settings):
    settings.RESILIENCE_REDIS_SENTINELS = [("127.0.0.1", 26379)]
    assert redis_health_snapshot()["server"]["mode"] == "sentinel-managed"
