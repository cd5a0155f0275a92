"""The app's cluster client: SCAN over every master, pipelines with scripts, errors the app already handles."""

from __future__ import annotations

import pytest
import redis

from agentapi_admin.redis_process import free_cluster_port
from resilience.breakers.redis_client import BreakerRedisCluster, ClusterConnectionFactory
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS


@pytest.fixture
def client(redis_cluster):
    client = BreakerRedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
    client.flushall()  # on every master
    yield client
    client.close()


def test_scan_with_an_integer_cursor_visits_every_master(client):
    names = {f"scan:{n}" for n in range(300)}
    for name in names:
        client.set(name, 1)
    holders = {client.get_node_from_key(name).name for name in names}
    assert len(holders) == 3

    seen, cursor, calls = set(), 0, 0
    while True:
        cursor, batch = client.scan(cursor=cursor, match="scan:*", count=50)
        seen.update(name.decode() for name in batch)
        calls += 1
        if not cursor:
            break
    assert seen == names
    assert calls > 3  # paged, not one reply per master
    assert {name.decode() for name in client.scan_iter(match="scan:*", count=50)} == names


def test_pipeline_runs_scripts_and_multi_key_deletes_in_order(client):
    pipe = client.pipeline(transaction=False)
    pipe.set("p:a", "1")
    pipe.set("p:b", "2")
    pipe.eval("return redis.call('GET', KEYS[1])", 1, "p:a")
    sha = client.script_load("return redis.call('INCR', KEYS[1])")
    pipe.evalsha(sha, 1, "p:c")
    pipe.exists("p:a", "p:b", "p:missing")
    pipe.exists("p:c")
    pipe.delete("p:a", "p:b", "p:missing")
    pipe.get("p:a")
    pipe.get("p:c")
    assert len(pipe) == 9
    assert pipe.execute() == [True, True, b"1", 1, 2, 1, 2, None, b"1"]


def test_pipeline_reports_a_missing_script_like_a_plain_pipeline(client):
    pipe = client.pipeline(transaction=False)
    pipe.evalsha("0" * 40, 1, "p:a")
    with pytest.raises(redis.exceptions.NoScriptError):
        pipe.execute()
    pipe.evalsha("0" * 40, 1, "p:a")
    pipe.set("p:a", 1)
    first, second = pipe.execute(raise_on_error=False)
    assert isinstance(first, redis.exceptions.NoScriptError)
    assert second is True


def test_pipeline_reloads_a_known_script_a_promoted_master_lacks(client):
    script = "return redis.call('INCR', KEYS[1])"
    sha = client.script_load(script)
    client.script_flush()  # as on a replica just promoted: it never saw SCRIPT LOAD
    pipe = client.pipeline(transaction=False)
    pipe.evalsha(sha, 1, "p:n")
    pipe.evalsha(sha, 1, "p:n")
    assert pipe.execute() == [1, 2]


def test_keys_in_several_slots_raise_crossslot_as_a_redis_error(client):
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):
        client.eval("return 1", 2, "slot:a", "slot:b")
    assert client.eval("return 1", 2, "{slot}:a", "{slot}:b") == 1


def test_no_seed_answering_is_an_outage_not_a_crash():
    port = free_cluster_port()
    factory = ClusterConnectionFactory(
        {"CLUSTER_NODES": [("127.0.0.1", port)], "CONNECTION_POOL_KWARGS": {"socket_connect_timeout": 0.2}}
    )
    with pytest.raises(REDIS_UNAVAILABLE_ERRORS):
        factory.connect("redis://127.0.0.1")


def test_info_describes_the_whole_cluster(client):
    for n in range(60):
        client.set(f"info:{n}", n)
    info = client.info()
    per_master = client.info(target_nodes=client.PRIMARIES)
    assert len(per_master) == 3
    assert info["db0"]["keys"] == 60 == sum(i["db0"]["keys"] for i in per_master.values() if "db0" in i)
    # Memory moves between two INFO calls; the sum is well above any one master's.
    assert info["used_memory"] > 2 * max(i["used_memory"] for i in per_master.values())
    assert info["redis_mode"] == "cluster"
    stats = client.info("commandstats")
    assert all(name.startswith("cmdstat_") for name in stats)
    per_master_stats = client.info("commandstats", target_nodes=client.PRIMARIES).values()
    assert stats["cmdstat_set"]["calls"] == sum(s.get("cmdstat_set", {}).get("calls", 0) for s in per_master_stats)
    assert stats["cmdstat_set"]["calls"] >= 60


def test_without_breaker_reaches_the_cluster_while_the_breaker_is_open(client):
    from resilience.breakers.process import redis_breaker
    from resilience.exceptions import RedisUnavailable

    with redis_breaker._lock:
        redis_breaker._set("open", "test")
    try:
        with pytest.raises(RedisUnavailable):
            client.get("k")
        direct = client.without_breaker()
        assert direct.set("k", "v") is True
        pipe = direct.pipeline(transaction=False)
        pipe.eval("return redis.call('GET', KEYS[1])", 1, "k")
        assert pipe.execute() == [b"v"]
    finally:
        redis_breaker.reset()
