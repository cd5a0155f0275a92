"""REDIS_CLUSTER_NODES with a password and TLS: the app under gunicorn on a real TLS-only Redis Cluster."""

from __future__ import annotations

import pytest

from agentapi_admin.redis_process import RedisClusterProcesses
from tests.deploy.conftest import TlsRedisProcess

PASSWORD = "cluster-test-password"


class TlsClusterNode(TlsRedisProcess):
    """A TLS-only node whose cluster bus and replication use TLS too."""

    def command(self) -> list[str]:
        return [*super().command(), "--tls-cluster", "yes", "--tls-replication", "yes"]


@pytest.fixture
def tls_cluster(tmp_path, certs):
    cluster = RedisClusterProcesses(
        directory=tmp_path / "cluster",
        password=PASSWORD,
        node_class=TlsClusterNode,
        node_kwargs={"certs": certs},
        client_kwargs={"ssl": True, "ssl_ca_certs": str(certs.ca)},
        cli_args=["--tls", "--cacert", str(certs.ca)],
    ).start()
    yield cluster
    cluster.stop()


def _env(cluster, certs, **extra: str) -> dict[str, str]:
    return {
        "REDIS_CLUSTER_NODES": cluster.seeds,
        "REDIS_CLUSTER_TLS": "true",
        "REDIS_TLS_CA_FILE": str(certs.ca),
        "REDIS_PASSWORD": PASSWORD,
        "REDIS_CONNECTION_TIMEOUT": "2s",
        **extra,
    }


def test_cache_sessions_and_readyz_work_on_a_tls_cluster_with_a_password(tls_cluster, certs, app_server):
    app = app_server(**_env(tls_cluster, certs))

    status, body = app.get("/readyz")
    assert status == 200, body
    assert body["checks"]["redis"]["status"] == "ok"

    status, first = app.get("/probe/?set=over-tls-cluster&open=1")
    assert status == 200, first
    status, second = app.get("/probe/")
    assert status == 200, second
    assert (first["hits"], second["hits"]) == (1, 2)  # the session cookie found its session on the cluster
    assert second["cache"] == "over-tls-cluster"
    assert second["raw"] == "over-tls-cluster"
    assert second["breaker"] == {"state": "open", "storage": "redis"}


def test_a_wrong_cluster_password_fails_readiness(tls_cluster, certs, app_server):
    app = app_server(**_env(tls_cluster, certs, REDIS_PASSWORD="not-the-password"))
    status, body = app.get("/readyz")
    assert status == 503, body
    assert body["failed"] == ["redis"]
