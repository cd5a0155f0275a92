"""Print the health of the app's Redis; exit 0 healthy, 1 degraded, 2 down (a docker healthcheck)."""

from __future__ import annotations

import redis
from django.conf import settings

from agentapi_admin.command import EXIT_FAILED, EXIT_OK, EXIT_REDIS_DOWN, OperationCommand, UsageError
from resilience.health.probes import ClusterProbe, NativeProbe, RestProbe
from resilience.health.selectors import redis_health_snapshot, redis_health_verdict

EXIT_BY_VERDICT = {"healthy": EXIT_OK, "degraded": EXIT_FAILED, "down": EXIT_REDIS_DOWN}


class Command(OperationCommand):
    help = (
        "Check the app's Redis (or Upstash's REST API when REDIS_PROTOCOL=rest): PING latency, role, memory and "
        "eviction policy, persistence, replication. Exit 0 healthy, 1 degraded (the reasons are printed), "
        "2 down. Fast enough for a docker healthcheck: `python manage.py redis_health` with --timeout."
    )
    supports_dry_run = False

    def add_command_arguments(self, parser) -> None:
        parser.add_argument(
            "--timeout", type=float, default=2.0, help="Seconds to wait for Redis per call (default 2)."
        )
        parser.add_argument(
            "--max-latency-ms", type=float, default=250.0, help="Median PING above this is degraded (default 250)."
        )

    def run(self, **options) -> dict:
        if not 0 < options["timeout"] <= 60:
            raise UsageError("--timeout must be a number of seconds from 0 to 60, e.g. --timeout 2.")
        if options["max_latency_ms"] <= 0:
            raise UsageError("--max-latency-ms must be positive, e.g. --max-latency-ms 250.")
        snapshot = redis_health_snapshot(self._probe(options["timeout"]), quick=True)
        verdict, reasons = redis_health_verdict(snapshot, max_latency_ms=options["max_latency_ms"])
        summary = {
            "status": verdict,
            "reasons": reasons,
            "target": snapshot["target"],
            "transport": snapshot["transport"],
        }
        if snapshot["ok"]:
            server, memory = snapshot["server"], snapshot["memory"]
            summary.update(
                ping_ms=snapshot["latency"]["p50_ms"],
                version=server["version"],
                role=server["role"],
                mode=server["mode"],
                **({"nodes": _nodes(snapshot["cluster"])} if snapshot.get("cluster") else {}),
                memory=memory["used_human"],
                policy=memory["policy"],
                clients=snapshot["clients"]["connected"],
            )
        if self.as_json:
            summary["snapshot"] = snapshot
        if verdict != "healthy":
            summary["exit_code"] = EXIT_BY_VERDICT[verdict]
            summary["error"] = f"Redis is {verdict}: {' '.join(reasons)}"
        return summary

    @staticmethod
    def _probe(timeout: float):
        """Return the configured probe with `timeout` instead of the app's REDIS_CONNECTION_TIMEOUT."""
        if settings.RESILIENCE_REDIS_PROTOCOL == "rest":
            rest = RestProbe()
            rest.client.timeout = timeout
            return rest
        if not settings.RESILIENCE_REDIS_ENABLED:
            return None  # the snapshot reports REDIS_ENABLE=false
        if settings.RESILIENCE_REDIS_CLUSTER_NODES:
            return ClusterProbe()  # the cluster client's own timeouts: it must reach every node anyway
        probe = NativeProbe()
        pool = probe.client.connection_pool
        if type(pool) in (redis.ConnectionPool, redis.BlockingConnectionPool):
            # A private pool to the same server with short timeouts; target and pools shown stay the app's.
            kwargs = {**pool.connection_kwargs, "socket_timeout": timeout, "socket_connect_timeout": timeout}
            probe.client = redis.Redis(
                connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
            )
        return probe


def _nodes(cluster: dict) -> list[dict]:
    """Return one line per cluster node: address, role, slots, memory, health."""
    return [
        {
            "address": node["address"],
            "role": node["role"],
            "slots": ",".join(node["slots"]) or "-",
            "memory": node["used_human"],
            "health": node["health"],
        }
        for node in cluster["nodes"]
    ]
