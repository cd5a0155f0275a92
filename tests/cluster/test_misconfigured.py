"""A standalone REDIS_URL pointed at a cluster node: refuse to look healthy, never answer 500."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_REDIS_DOWN
from resilience.health.selectors import health_state_reset
from tests.commands.conftest import run_json

# The app's own settings here are standalone ones, pointed at a node of a separate cluster.
pytestmark = pytest.mark.standalone_redis

PASSWORD = "a-long-test-password-1"


def _point_app_at(settings, port: int) -> None:
    url = f"redis://127.0.0.1:{port}/0"
    caches = copy.deepcopy(settings.CACHES)
    for cache in caches.values():
        cache["LOCATION"] = url
    settings.CACHES = caches
    settings.RESILIENCE_REDIS_URL = url


@pytest.fixture
def app_on_a_replica_node(settings, redis_cluster):
    """The app's standalone client on a cluster replica: every key command answers MOVED."""
    masters = {node.port for node in redis_cluster.master_nodes()}
    replica = next(node for node in redis_cluster.nodes if node.running() and node.port not in masters)
    _point_app_at(settings, replica.port)
    health_state_reset()
    yield replica
    health_state_reset()


@pytest.mark.django_db
def test_readyz_fails_naming_redis_cluster_nodes(client, app_on_a_replica_node):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    redis_check = body["checks"]["redis"]
    assert redis_check["error"] == "ClusterNotConfigured"
    assert "REDIS_CLUSTER_NODES" in redis_check["reason"]


def test_redis_health_exits_non_zero_naming_redis_cluster_nodes(app_on_a_replica_node):
    with pytest.raises(CommandError, match="REDIS_CLUSTER_NODES") as excinfo:
        run_json("redis_health")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN


@pytest.mark.django_db
def test_ops_page_says_the_cluster_is_not_configured(admin_client, app_on_a_replica_node):
    response = admin_client.get("/admin/ops/redis/?format=json")
    assert response.status_code == 503
    assert "REDIS_CLUSTER_NODES" in response.json()["error"]
    page = admin_client.get("/admin/ops/redis/")
    assert "The app cannot use this Redis." in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("staff", [False, True])
def test_sign_in_answers_the_redis_unavailable_page_not_500(client, app_on_a_replica_node, staff):
    get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=staff)
    response = client.post("/portal/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code in (302, 503), response.status_code
    page = client.get("/portal/")
    assert page.status_code in (200, 302, 503), page.status_code
