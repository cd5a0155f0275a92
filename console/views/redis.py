"""The Redis health page."""

from __future__ import annotations

from console.views.common import (
    history_context,
    ops_page,
    render_ops,
)
from resilience.health.selectors import redis_health_snapshot
from resilience.history.charts import redis_charts


@ops_page
def redis_health(request):
    """Redis health: latency, server, memory, throughput, keyspace, persistence, slowlog, app areas."""
    snapshot = redis_health_snapshot()
    history, series = history_context("redis", redis_charts)
    return render_ops(
        request,
        "redis",
        {"title": "Redis health", "snapshot": snapshot, **history},
        {**snapshot, "history": series},
        json_status=200 if snapshot["ok"] else 503,
    )
