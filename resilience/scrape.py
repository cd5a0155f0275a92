"""What /metrics reads at scrape time: Redis server gauges, breaker states in Redis, maintenance lag.

Registered with `agentapi_admin.metrics` when the app is ready. Redis INFO is read
at most once every `REDIS_SAMPLE_SECONDS` per process however often Prometheus
scrapes, so several scrapers (or a dashboard's refresh) cost Redis nothing extra.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agentapi_admin import metrics
from resilience.breakers.process import redis_breaker
from resilience.breakers.selectors import breakers_snapshot
from resilience.connection import get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.history.selectors import maintenance_successes

REDIS_SAMPLE_SECONDS = 5.0


class RedisServerCollector:
    """Redis up, PING latency, memory vs maxmemory, evictions, ops/s, clients; cached for a few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = 0.0
        self._sample: dict | None = None

    def _read(self) -> dict:
        with self._lock:
            if self._sample is not None and time.monotonic() - self._at < REDIS_SAMPLE_SECONDS:
                return self._sample
            sample: dict = {"up": 0}
            try:
                client = get_redis()
                started = time.perf_counter()
                client.ping()
                sample["ping"] = time.perf_counter() - started
                sample["info"] = client.info()
                sample["up"] = 1
            except REDIS_UNAVAILABLE_ERRORS:
                pass
            self._sample, self._at = sample, time.monotonic()
            return sample

    def describe(self):
        return []

    def collect(self):
        if not settings.RESILIENCE_REDIS_ENABLED:
            return
        sample = self._read()
        yield GaugeMetricFamily("agentapi_redis_up", "1 when the app's Redis answered PING.", value=sample["up"])
        if not sample["up"]:
            return
        info = sample["info"]
        yield GaugeMetricFamily(
            "agentapi_redis_ping_seconds", "One PING round trip from this process.", value=sample["ping"]
        )
        for name, help_text, field in (
            ("agentapi_redis_used_memory_bytes", "Redis used_memory.", "used_memory"),
            ("agentapi_redis_maxmemory_bytes", "Redis maxmemory (0: no limit).", "maxmemory"),
            ("agentapi_redis_ops_per_second", "Redis instantaneous_ops_per_sec.", "instantaneous_ops_per_sec"),
            ("agentapi_redis_connected_clients", "Redis connected_clients.", "connected_clients"),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(info.get(field, 0)))
        yield CounterMetricFamily(
            "agentapi_redis_evicted_keys",
            "Redis evicted_keys since the server started.",
            value=float(info.get("evicted_keys", 0)),
        )


class MaintenanceCollector:
    """Each maintenance task's last success and the seconds since (recorded in Redis by run_maintenance)."""

    def describe(self):
        return []

    def collect(self):
        if not settings.RESILIENCE_REDIS_ENABLED:
            return
        try:
            successes = maintenance_successes()
        except REDIS_UNAVAILABLE_ERRORS:
            return
        last = GaugeMetricFamily(
            "agentapi_maintenance_last_success_timestamp_seconds",
            "When a maintenance task last succeeded.",
            labels=["task"],
        )
        lag = GaugeMetricFamily(
            "agentapi_maintenance_lag_seconds", "Seconds since a maintenance task last succeeded.", labels=["task"]
        )
        now = time.time()
        for task, at in sorted(successes.items()):
            last.add_metric([task], at)
            lag.add_metric([task], max(0.0, now - at))
        yield last
        yield lag


def refresh_breaker_states() -> None:
    """Set the breaker state gauges from the registry (named breakers' state lives in Redis)."""
    try:
        states = [(state.name, state.state) for state in breakers_snapshot()]
    except REDIS_UNAVAILABLE_ERRORS:  # Redis down: only this process's Redis breaker is known
        states = [(redis_breaker.name, redis_breaker.state)]
    for name, state in states:
        metrics.breaker_state(name, state)


def register() -> None:
    """Hook the scrape-time collectors and the history's refusal counter into the metrics module."""
    from resilience.history.counters import denials

    metrics.register_scrape_collector(_redis_collector)
    metrics.register_scrape_collector(_maintenance_collector)
    metrics.register_scrape_hook(refresh_breaker_states)
    if settings.RESILIENCE_REDIS_ENABLED:
        metrics.register_denial_listener(denials)


_redis_collector = RedisServerCollector()
_maintenance_collector = MaintenanceCollector()
