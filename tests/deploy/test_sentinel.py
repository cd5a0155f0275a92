"""Sentinel: the app follows a failover and keeps the state it wrote before it."""

from __future__ import annotations

import time

import pytest

from tests.deploy.sentinel_cluster import MASTER_NAME, SentinelCluster, wait_until


@pytest.fixture
def cluster(tmp_path):
    cluster = SentinelCluster(tmp_path / "sentinel", password="data-pw", sentinel_password="sentinel-pw")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _sentinel_env(cluster: SentinelCluster) -> dict[str, str]:
    return {
        "REDIS_SENTINELS": cluster.sentinel_addresses,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        "REDIS_SENTINEL_PASSWORD": cluster.sentinel_password,
        "REDIS_PASSWORD": cluster.password,
        "REDIS_CONNECTION_TIMEOUT": "1s",
        # The in-process Redis breaker opens during the failover; with the default 30s
        # reset it would keep failing fast for 30s after the new master is up. A
        # Sentinel failover takes seconds, so docs/deployment.md recommends this.
        "CIRCUIT_BREAKER_OVERRIDES": "redis:reset_timeout=2s",
    }


@pytest.mark.parametrize("how", ["kill-master", "sentinel-failover", "paused-switchover"])
def test_app_keeps_serving_and_keeps_its_state_across_a_failover(cluster, app_server, how):
    app = app_server(**_sentinel_env(cluster))
    old_master, new_master = cluster.master.port, cluster.replica.port

    status, body = app.get("/readyz")
    assert status == 200, body
    status, before = app.get("/probe/?set=written-before-failover&hit=1&open=1")
    assert status == 200, before
    assert (before["hits"], before["redis_port"]) == (1, old_master)
    assert before["limit"]["degraded"] is False
    assert before["breaker"] == {"state": "open", "storage": "redis"}

    # Replication is asynchronous: wait until the replica has every write, as
    # `min-replicas-to-write` would in production (docs/deployment.md).
    with cluster.data_client(cluster.master) as master:
        assert master.wait(1, 5000) == 1

    if how == "kill-master":
        cluster.master.kill()
    else:
        if how == "paused-switchover":
            # The planned-maintenance procedure in docs/deployment.md: hold writes on the old
            # master until the sentinels have demoted it, so none land there after the promotion.
            with cluster.data_client(cluster.master) as master:
                master.execute_command("CLIENT PAUSE", 30000, "WRITE")
        with cluster.sentinel_client(cluster.sentinels[0]) as sentinel:
            assert sentinel.execute_command("SENTINEL FAILOVER", MASTER_NAME)

    started = time.monotonic()
    successes = []

    def served_by_new_master():
        status, body = app.get("/probe/", timeout=5)
        if status == 200:
            successes.append(body)
        return status == 200 and body["redis_port"] == new_master

    wait_until(served_by_new_master, timeout=45, what="the app did not serve from the promoted replica", interval=0.2)
    outage = time.monotonic() - started
    assert cluster.master_port() == new_master

    status, body = app.get("/readyz")
    assert status == 200, body
    status, after = app.get("/probe/")
    assert status == 200, after
    # Same gunicorn process, same session cookie: the session and both caches
    # written on the old master are read back from the new one.
    assert after["redis_port"] == new_master
    assert after["cache"] == "written-before-failover"
    assert after["raw"] == "written-before-failover"
    # A new session would count 1: this one carries the pre-failover count. Writes the
    # old master accepted after the promotion and before its demotion are lost (Redis
    # replication is asynchronous; docs/deployment.md), so the count may be lower than
    # the number of successful requests, but it never restarts.
    assert after["hits"] > 1
    status, latest = app.get("/probe/?hit=1")
    assert (status, latest["hits"]) == (200, after["hits"] + 1)
    # The limiter kept counting where it was (a lost state would answer a full allowance
    # again) and the breaker opened before the failover is still open, read from Redis.
    assert latest["limit"] == {"remaining": before["limit"]["remaining"] - 1, "degraded": False}
    assert latest["breaker"] == {"state": "open", "storage": "redis"}
    lost = 1 + len(successes) + 1 - after["hits"]
    print(f"{how}: served by the new master {outage:.1f}s after the failover began; {lost} session writes lost")
    if how != "sentinel-failover":
        # A dead master takes no writes, and a paused one holds them: nothing is lost.
        assert lost == 0


def test_the_sentinel_client_is_django_redis_sentinel_client_behind_the_redis_breaker():
    from django_redis.client import SentinelClient

    from resilience.breakers.redis_client import BreakerCacheClient, BreakerSentinelClient

    assert issubclass(BreakerSentinelClient, SentinelClient)
    assert issubclass(BreakerSentinelClient, BreakerCacheClient)


def test_settings_switch_both_aliases_to_the_sentinel_client(load_settings):
    values, error = load_settings(
        ["CACHES", "RESILIENCE_REDIS_URL"],
        DEBUG="true",
        REDIS_SENTINELS="s1:26379, s2 ,[::1]:26380",
        REDIS_SENTINEL_MASTER="main",
        REDIS_SENTINEL_PASSWORD="spw",
        REDIS_PASSWORD="dpw",
    )
    assert values is not None, error
    for alias in ("default", "sessions"):
        cache = values["CACHES"][alias]
        assert cache["LOCATION"] == ["redis://main/0"]
        options = cache["OPTIONS"]
        assert options["CLIENT_CLASS"] == "resilience.breakers.redis_client.BreakerSentinelClient"
        assert options["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
        assert options["CONNECTION_POOL_CLASS"] == "redis.sentinel.SentinelConnectionPool"
        assert options["SENTINELS"] == [["s1", 26379], ["s2", 26379], ["::1", 26380]]
        assert options["SENTINEL_KWARGS"]["password"] == "spw"
        assert options["CONNECTION_POOL_KWARGS"]["password"] == "dpw"
    assert values["RESILIENCE_REDIS_URL"] == "redis+sentinel://s1:26379,s2:26379,::1:26380/main/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_SENTINELS": "s1:notaport"}, "REDIS_SENTINELS='s1:notaport' is invalid: expected a comma-separated"),
        (
            {"REDIS_SENTINELS": "s1:26379", "UPSTASH_REDIS_URL": "rediss://default:pw@x.upstash.io:6379"},
            "REDIS_SENTINELS and UPSTASH_REDIS_URL are both set",
        ),
        (
            {"REDIS_SENTINELS": "s1:26379", "REDIS_URL": "rediss://r:6379/0"},
            "REDIS_SENTINELS with a rediss:// REDIS_URL is not supported",
        ),
    ],
)
def test_settings_reject_bad_sentinel_configuration(load_settings, env, message):
    values, error = load_settings(["CACHES"], DEBUG="true", **env)
    assert values is None
    assert message in error
