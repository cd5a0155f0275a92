"""REDIS_CLUSTER_NODES: parsing, the cluster client for every cache alias, and the combinations refused."""

from __future__ import annotations

import pytest


def test_cluster_nodes_switch_every_cache_alias_to_the_cluster_client(load_settings):
    values, error = load_settings(
        ["CACHES", "RESILIENCE_REDIS_URL", "RESILIENCE_REDIS_URL_SOURCE", "RESILIENCE_REDIS_CLUSTER_NODES"],
        DEBUG="true",
        REDIS_CLUSTER_NODES="10.0.0.1:7000, 10.0.0.2 ,[::1]:7002",
        REDIS_PASSWORD="dpw",
        REDIS_URL="redis://ignored:6379/0",
    )
    assert values is not None, error
    assert values["RESILIENCE_REDIS_CLUSTER_NODES"] == [["10.0.0.1", 7000], ["10.0.0.2", 6379], ["::1", 7002]]
    assert values["RESILIENCE_REDIS_URL_SOURCE"] == "REDIS_CLUSTER_NODES"
    assert values["RESILIENCE_REDIS_URL"] == "redis+cluster://10.0.0.1:7000,10.0.0.2:6379,::1:7002"
    for alias in ("default", "sessions"):
        options = values["CACHES"][alias]["OPTIONS"]
        assert options["CLIENT_CLASS"] == "resilience.breakers.redis_client.BreakerClusterClient"
        assert options["CONNECTION_FACTORY"] == "resilience.breakers.redis_client.ClusterConnectionFactory"
        assert options["CLUSTER_NODES"] == values["RESILIENCE_REDIS_CLUSTER_NODES"]
        assert options["CONNECTION_POOL_KWARGS"]["password"] == "dpw"
        assert "ssl_cert_reqs" not in options["CONNECTION_POOL_KWARGS"]


def test_cluster_tls_uses_the_same_tls_variables(load_settings, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    values, error = load_settings(
        ["CACHES", "RESILIENCE_REDIS_TLS"],
        DEBUG="true",
        REDIS_CLUSTER_NODES="10.0.0.1:7000",
        REDIS_CLUSTER_TLS="true",
        REDIS_TLS_CA_FILE=str(ca),
    )
    assert values is not None, error
    assert values["RESILIENCE_REDIS_TLS"] is True
    kwargs = values["CACHES"]["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]
    assert kwargs["ssl"] is True
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_ca_certs"] == str(ca)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_CLUSTER_NODES": "a:7000", "REDIS_SENTINELS": "s1:26379"},
            "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set",
        ),
        (
            {"REDIS_CLUSTER_NODES": "a:7000", "UPSTASH_REDIS_URL": "rediss://default:pw@x.upstash.io:6379"},
            "REDIS_CLUSTER_NODES and UPSTASH_REDIS_URL are both set",
        ),
        ({"REDIS_CLUSTER_NODES": "a:port"}, "REDIS_CLUSTER_NODES='a:port' is invalid: expected a comma-separated"),
        (
            {"REDIS_CLUSTER_NODES": "a:7000", "REDIS_URL": "rediss://r:6379/0"},
            "REDIS_CLUSTER_NODES with a rediss:// REDIS_URL",
        ),
        ({"REDIS_CLUSTER_NODES": "a:7000", "REDIS_CLUSTER_TLS": "maybe"}, "REDIS_CLUSTER_TLS"),
    ],
)
def test_settings_reject_bad_cluster_configuration(load_settings, env, message):
    values, error = load_settings(["CACHES"], DEBUG="true", **env)
    assert values is None
    assert message in error


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, True),
        ({"REDIS_CLUSTER_NODES": "node-1:6379"}, False),
        ({"REDIS_SENTINELS": "s1:26379"}, False),
        ({"REDIS_ENABLE": "false"}, False),
    ],
)
def test_make_run_starts_no_local_redis_when_a_cluster_is_configured(env, wanted):
    from agentapi_admin.devserver import _wants_local_redis

    assert _wants_local_redis(env) is wanted
