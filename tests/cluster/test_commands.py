"""Maintenance commands on a cluster visit every master, not the one node a client happens to ask."""

from __future__ import annotations

import time

import pytest

from resilience.sessions.backends.redis import index_key
from tests.commands.conftest import run_json

pytestmark = [pytest.mark.cluster_redis, pytest.mark.django_db]


def test_cleanup_sessions_scans_every_master(redis_client, redis_cluster):
    past_ms = int(time.time() * 1000) - 60_000
    users = range(1, 61)
    for user_id in users:
        redis_client.zadd(index_key(user_id), {"expired-session-key": past_ms})
    holders = {redis_client.get_node_from_key(index_key(user_id)).name for user_id in users}
    assert len(holders) == 3, "the index keys are spread over the three masters"

    summary = run_json("cleanup_sessions", "--batch-size", "7")
    assert summary["index_keys"] == 60
    assert summary["expired_entries"] == 60
    assert not any(redis_client.exists(index_key(user_id)) for user_id in users)


def test_redis_health_summary_counts_keys_on_every_master(redis_client):
    for n in range(90):
        redis_client.set(f"agentapi:cache:spread{n}", n)
    summary = run_json("redis_health")
    assert summary["mode"] == "cluster"
    assert sum(node["role"] == "primary" for node in summary["nodes"]) == 3
    assert summary["snapshot"]["keys"]["keyspace"]["db0"]["keys"] == 90
