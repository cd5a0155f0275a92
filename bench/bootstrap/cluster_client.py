"""CPU per call of redis-py's cluster client against its single-node client, for a call shaped like the gateway's.

    .venv/bin/python -m bench.bootstrap.cluster_client [--rounds 11] [--calls 5000]

Starts a redis-server and a Redis Cluster (3 masters, 3 replicas), then sends the same
EVALSHA (7 keys under one hash tag and 10 arguments, as the gateway sends; the script
only returns 1) through `redis.Redis` and through `redis.cluster.RedisCluster`,
alternating in rounds, and prints the median `time.process_time` per call of each, of
the cluster client's routing step alone (slot of the keys, node of the slot), and the
Redis commands the cluster's masters saw per call (`INFO commandstats`: MOVED replies
count as rejected calls). Before that it measures the CPU each Redis spends with no
traffic at all (`--idle` seconds): a cluster's masters gossip and run their cron whatever
the load, which a CPU-per-request figure summed over them includes. No Django: the
app's clients add the same breaker to both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisClusterProcesses, RedisProcess  # noqa: E402
from bench.bootstrap.run import cpu_seconds  # noqa: E402

KEYS = [f"agentapi:bench:{{t:acme}}:{n}" for n in range(7)]
ARGS = ["", "body", "", 691200, 1, 60000, "0", "config:read", "", "t:acme"]


def commands(clients: list[redis.Redis]) -> dict:
    """Return calls and rejected calls per command, summed over `clients`."""
    total: dict[str, list[int]] = {}
    for client in clients:
        for name, stats in client.info("commandstats").items():
            seen = total.setdefault(name.removeprefix("cmdstat_"), [0, 0])
            seen[0] += stats["calls"]
            seen[1] += stats.get("rejected_calls", 0)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--calls", type=int, default=5000, help="calls per client per round")
    parser.add_argument("--idle", type=int, default=10, help="seconds of no traffic for the idle CPU")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-client-"))
    server = RedisProcess(directory=workdir / "redis").start()
    cluster = RedisClusterProcesses(directory=workdir / "cluster", node_timeout_ms=15000)
    try:
        cluster.start()
        single = redis.Redis(port=server.port)
        clustered = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in cluster.nodes])
        sha = single.script_load("return 1")
        clustered.script_load("return 1")  # on every master
        master_nodes = cluster.master_nodes()
        masters = [redis.Redis(port=node.port) for node in master_nodes]
        idle_nodes = {"standalone": [server], "cluster_masters": master_nodes}
        idle_nodes["cluster_replicas"] = [node for node in cluster.nodes if node not in master_nodes]
        idle_before = {name: sum(cpu_seconds(n.process.pid) for n in nodes) for name, nodes in idle_nodes.items()}
        time.sleep(options.idle)
        idle = {
            name: round((sum(cpu_seconds(n.process.pid) for n in nodes) - idle_before[name]) / options.idle * 1e3, 2)
            for name, nodes in idle_nodes.items()
        }

        def route() -> None:
            clustered.nodes_manager.get_node_from_slot(clustered.determine_slot("EVALSHA", sha, 7, *KEYS, *ARGS))

        calls = {
            "single": lambda: single.evalsha(sha, 7, *KEYS, *ARGS),
            "cluster": lambda: clustered.evalsha(sha, 7, *KEYS, *ARGS),
            "cluster_routing_only": route,
        }
        for call in calls.values():
            call()
        before = commands(masters)
        times = {name: [] for name in calls}
        for _ in range(options.rounds):
            for name, call in calls.items():
                started = time.process_time()
                for _ in range(options.calls):
                    call()
                times[name].append((time.process_time() - started) / options.calls * 1e6)
        after = commands(masters)
        sent = options.rounds * options.calls
        delta = {}
        for name, (calls_after, rejected_after) in after.items():
            calls_before, rejected_before = before.get(name, [0, 0])
            if name != "info" and (calls_after, rejected_after) != (calls_before, rejected_before):
                delta[name] = [round((calls_after - calls_before) / sent, 3), rejected_after - rejected_before]
        median = {name: round(statistics.median(values), 1) for name, values in times.items()}
        summary = {
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "calls_per_round": options.calls,
            "rounds": options.rounds,
            # CPU milliseconds per second with no traffic, summed over the nodes of each group.
            "idle_cpu_ms_per_s": idle,
            "cpu_us_per_call_median": median,
            "cpu_us_per_call_rounds": {name: [round(x, 1) for x in values] for name, values in times.items()},
            "cluster_extra_us": round(median["cluster"] - median["single"], 1),
            # command -> [calls per cluster EVALSHA sent, rejected calls (MOVED/ASK) in all]
            "cluster_masters_commands": delta,
        }
        print(json.dumps(summary, indent=2))
        single.close()
        clustered.close()
        for client in masters:
            client.close()
        return 0
    finally:
        cluster.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
