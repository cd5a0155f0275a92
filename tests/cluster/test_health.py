"""The app on a real cluster: /readyz, redis_health and the ops Redis page see every node."""

from __future__ import annotations

import pytest

from resilience.health.selectors import health_state_reset
from tests.commands.conftest import run_json

pytestmark = [pytest.mark.cluster_redis, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fresh_state():
    health_state_reset()
    yield
    health_state_reset()


def test_readyz_is_ok_on_a_healthy_cluster(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_redis_health_reports_mode_cluster_with_every_node(redis_cluster):
    summary = run_json("redis_health")
    assert summary["status"] == "healthy", summary["reasons"]
    assert summary["mode"] == "cluster"
    assert {node["address"] for node in summary["nodes"]} == {f"127.0.0.1:{n.port}" for n in redis_cluster.nodes}
    masters = [node for node in summary["nodes"] if node["role"] == "primary"]
    assert len(masters) == 3 and all(node["slots"] != "-" for node in masters)
    assert all(node["health"] == "ok" for node in summary["nodes"])


def test_ops_page_lists_every_master_and_replica_with_slots_memory_and_health(admin_client, redis_client):
    for n in range(100):
        redis_client.set(f"agentapi:cache:probe{n}", n)
    response = admin_client.get("/admin/ops/redis/?format=json")
    assert response.status_code == 200
    cluster = response.json()["cluster"]
    assert cluster["state"] == "ok" and cluster["slots_ok"] == 16384
    primaries = [node for node in cluster["nodes"] if node["role"] == "primary"]
    replicas = [node for node in cluster["nodes"] if node["role"] == "replica"]
    assert len(primaries) == 3 and len(replicas) == 3
    assert sum(node["slot_count"] for node in primaries) == 16384
    assert {node["primary"] for node in replicas} == {node["address"] for node in primaries}
    assert all(node["used_human"] and node["health"] == "ok" for node in cluster["nodes"])
    assert sum(node["keys"] for node in primaries) >= 100
    assert response.json()["areas"]["dbsize"] >= 100  # DBSIZE summed over the masters

    page = admin_client.get("/admin/ops/redis/")
    html = page.content.decode()
    for node in cluster["nodes"]:
        assert node["address"] in html
    assert primaries[0]["slots"][0] in html


def test_a_dead_replica_is_degraded_not_down(redis_cluster):
    masters = {node.port for node in redis_cluster.master_nodes()}
    replica = next(node for node in redis_cluster.nodes if node.port not in masters)
    replica.kill()
    try:
        with pytest.raises(Exception, match="degraded") as excinfo:
            run_json("redis_health")
        assert f"127.0.0.1:{replica.port}" in str(excinfo.value)
    finally:
        replica.start()
        redis_cluster.wait_ok()
