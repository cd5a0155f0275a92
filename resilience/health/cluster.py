"""Redis Cluster health: every node with its role, slots, memory and health, and a cluster reached wrongly.

A Redis Cluster node answers PING and INFO to any client, so a single-node client
pointed at one (REDIS_URL set, REDIS_CLUSTER_NODES not) looks healthy while most
keys answer MOVED. `not_configured_reason` is how the health checks refuse that.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster

from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS

NOT_CONFIGURED = (
    "{target} is a Redis Cluster node (cluster_enabled:1) but REDIS_CLUSTER_NODES is not set: a single-node "
    "client gets MOVED for most keys, so rate limits, sessions and caches would fail open. Set "
    "REDIS_CLUSTER_NODES=host:port,host:port,... to the cluster's nodes."
)
MEMORY_WARNING_RATIO = 0.9


def cluster_configured() -> bool:
    """Return True when the app reaches Redis through the cluster client (REDIS_CLUSTER_NODES)."""
    return bool(getattr(settings, "RESILIENCE_REDIS_CLUSTER_NODES", None))


def not_configured_reason(info: dict, target: str) -> str | None:
    """Return why the app must not use this server, when INFO says cluster_enabled:1 without the cluster client."""
    if cluster_configured() or str(info.get("cluster_enabled", "0")) != "1":
        return None
    return NOT_CONFIGURED.format(target=target)


def cluster_state_reason(client: RedisCluster) -> str | None:
    """Return why the cluster cannot serve every slot (CLUSTER INFO), or None when cluster_state is ok."""
    info = RedisCluster.execute_command(client, "CLUSTER INFO")
    if info.get("cluster_state") == "ok":
        return None
    return (
        f"Redis Cluster state is {info.get('cluster_state')}: {info.get('cluster_slots_ok')} of 16384 slots "
        "are served; keys in the others fail until a replica takes over or the master returns."
    )


def cluster_overview(client: RedisCluster) -> dict:
    """Return the cluster's state and every master and replica with slots, memory and health."""
    info = RedisCluster.execute_command(client, "CLUSTER INFO")
    described = RedisCluster.execute_command(client, "CLUSTER NODES")
    by_id = {entry["node_id"]: address for address, entry in described.items()}
    nodes = [_node(client, address, entry, by_id) for address, entry in described.items()]
    nodes.sort(key=lambda n: (n["primary"] or n["address"], n["role"] != "primary", n["address"]))
    warnings = []
    if info.get("cluster_state") != "ok":
        warnings.append(
            f"Redis Cluster state is {info.get('cluster_state')}: {info.get('cluster_slots_ok')} of 16384 slots served."
        )
    for node in nodes:
        if node["health"] != "ok":
            warnings.append(f"Cluster node {node['address']} ({node['role']}) is {node['health']}.")
        elif node["used_ratio"] is not None and node["used_ratio"] >= MEMORY_WARNING_RATIO:
            warnings.append(f"Cluster node {node['address']} is at {node['used_ratio']:.0%} of maxmemory.")
    for node in nodes:
        if node["role"] == "primary" and node["health"] == "ok" and node["slot_count"]:
            replicas = [n for n in nodes if n["primary"] == node["address"] and n["health"] == "ok"]
            if not replicas:
                warnings.append(f"Master {node['address']} has no healthy replica: its slots cannot fail over.")
    return {
        "state": info.get("cluster_state"),
        "slots_ok": _int(info.get("cluster_slots_ok")),
        "size": _int(info.get("cluster_size")),
        "known_nodes": _int(info.get("cluster_known_nodes")),
        "nodes": nodes,
        "warnings": warnings,
    }


def _unreachable(node: dict, exc: BaseException) -> dict:
    node["error"] = type(exc).__name__
    if node["health"] == "ok":
        node["health"] = "unreachable"
    return node


def _node(client: RedisCluster, address: str, entry: dict, by_id: dict) -> dict:
    flags = set(entry["flags"].replace("myself,", "").split(","))
    role = "primary" if "master" in flags else "replica"
    slots = [f"{start}-{end}" if start != end else str(start) for start, end, *_ in entry.get("slots", [])]
    node = {
        "address": address,
        "id": entry["node_id"][:8],
        "role": role,
        "primary": by_id.get(entry.get("master_id")) if role == "replica" else None,
        "slots": slots,
        "slot_count": sum(int(end) - int(start) + 1 for start, end, *_ in entry.get("slots", [])),
        "health": "failed" if "fail" in flags else "suspected" if "fail?" in flags else "ok",
        "ping_ms": None,
        "used_human": None,
        "maxmemory_human": None,
        "used_ratio": None,
        "keys": None,
        "clients": None,
        "link": None,
        "error": None,
    }
    if not entry.get("connected") and node["health"] == "ok":
        node["health"] = "disconnected"
    host, _, port = address.rpartition(":")
    server, own = _node_client(client, host, int(port))
    try:
        started = time.perf_counter()
        server.ping()
        node["ping_ms"] = round((time.perf_counter() - started) * 1000, 3)
        info = server.info("everything")
    except REDIS_UNAVAILABLE_ERRORS as exc:
        return _unreachable(node, exc)
    except redis.exceptions.ResponseError as exc:  # e.g. LOADING or a node still joining: shown, not raised
        return _unreachable(node, exc)
    finally:
        if own:
            server.close()
    used, maxmemory = info.get("used_memory"), info.get("maxmemory")
    node.update(
        used_human=info.get("used_memory_human"),
        maxmemory_human=info.get("maxmemory_human") if maxmemory else "no limit",
        used_ratio=round(used / maxmemory, 4) if used is not None and maxmemory else None,
        keys=sum(db["keys"] for name, db in info.items() if name.startswith("db") and isinstance(db, dict)),
        clients=info.get("connected_clients"),
        link=info.get("master_link_status") if role == "replica" else None,
    )
    if role == "replica" and node["link"] not in (None, "up") and node["health"] == "ok":
        node["health"] = f"link to primary {node['link']}"
    return node


def _node_client(client: RedisCluster, host: str, port: int) -> tuple[redis.Redis, bool]:
    """Return a plain client on one node (no breaker in the way) and whether the caller must close it."""
    known = client.get_node(host=host, port=port)
    if known is not None and known.redis_connection is not None:
        return known.redis_connection, False
    kwargs: dict[str, Any] = {
        **settings.RESILIENCE_REDIS_CONNECTION_KWARGS,
        "socket_timeout": 1,
        "socket_connect_timeout": 1,
    }
    kwargs.pop("max_connections", None)
    return redis.Redis(host=host, port=port, **kwargs), True


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
