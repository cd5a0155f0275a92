"""The Redis health page."""

from __future__ import annotations

from resilience.health.selectors import redis_health_snapshot
from resilience.ops.views.common import (
    ops_page,
    render_ops,
)


@ops_page
def redis_health(request):
    """Redis health: latency, server, memory, throughput, keyspace, persistence, slowlog, app areas."""
    snapshot = redis_health_snapshot()
    return render_ops(
        request,
        "redis",
        {"title": "Redis health", "snapshot": snapshot},
        snapshot,
        json_status=200 if snapshot["ok"] else 503,
    )
