"""redis_health: exit 0 healthy, 1 degraded, 2 down; JSON; the REST transport; fast enough for a healthcheck."""

from __future__ import annotations

import time

import pytest
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED, EXIT_REDIS_DOWN
from agentapi_admin.redis_process import free_port
from resilience.health.selectors import health_state_reset
from tests.commands.conftest import run_json
from tests.resilience.health.upstash_standin import UpstashStandIn


@pytest.fixture(autouse=True)
def _fresh_state():
    health_state_reset()
    yield
    health_state_reset()


def test_healthy_exits_0_with_a_summary():
    started = time.monotonic()
    summary = run_json("redis_health")
    assert time.monotonic() - started < 1.0, "quick: no throughput sampling, no keyspace scan"
    assert summary["status"] == "healthy" and summary["reasons"] == []
    assert summary["role"] == "primary" and summary["ping_ms"] >= 0
    assert summary["snapshot"]["ok"] is True and summary["snapshot"]["areas"] is None


def test_plain_output_is_one_line():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("redis_health", stdout=out)
    assert out.getvalue().startswith("redis_health: status=healthy, reasons=[]")


def test_allkeys_eviction_is_degraded_exit_1(redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(CommandError, match="Redis is degraded: maxmemory-policy allkeys-lru") as excinfo:
            run_json("redis_health")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert excinfo.value.returncode == EXIT_FAILED


def test_slow_ping_is_degraded():
    with pytest.raises(CommandError, match=r"PING takes .* ms \(median\), over 0.0001 ms") as excinfo:
        run_json("redis_health", "--max-latency-ms", "0.0001")
    assert excinfo.value.returncode == EXIT_FAILED


def test_down_exits_2_quickly(redis_server):
    redis_server.kill()
    started = time.monotonic()
    with pytest.raises(CommandError, match="Redis is down") as excinfo:
        run_json("redis_health", "--timeout", "0.5")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
    assert time.monotonic() - started < 3


def test_hung_redis_is_down_within_the_timeout(redis_server):
    import signal

    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(CommandError) as excinfo:
            run_json("redis_health", "--timeout", "0.3")
        elapsed = time.monotonic() - started
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
    assert elapsed < 2, f"took {elapsed:.1f}s"


def test_rest_transport(redis_server, settings):
    with UpstashStandIn(redis_server.port, token="tok-1") as standin:
        settings.RESILIENCE_REDIS_PROTOCOL = "rest"
        settings.RESILIENCE_UPSTASH_REST_URL = standin.url
        settings.RESILIENCE_UPSTASH_REST_TOKEN = "tok-1"
        summary = run_json("redis_health")
    assert (summary["status"], summary["transport"]) == ("healthy", "rest")
    settings.RESILIENCE_UPSTASH_REST_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError) as excinfo:
        run_json("redis_health", "--timeout", "0.5")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN


def test_disabled_redis_is_down(settings):
    settings.RESILIENCE_REDIS_ENABLED = False
    with pytest.raises(CommandError, match="REDIS_ENABLE=false") as excinfo:
        run_json("redis_health")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN


@pytest.mark.parametrize(
    ("args", "message"), [(["--timeout", "0"], "--timeout"), (["--max-latency-ms", "-1"], "--max")]
)
def test_bad_flags(args, message):
    with pytest.raises(CommandError, match=message):
        run_json("redis_health", *args)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("oom", r"Redis refuses writes \(OutOfMemoryError\).*maxmemory"),
        ("readonly", r"Redis refuses writes \(ReadOnlyError\).*read-only replica"),
        ("misconf", r"Redis refuses writes \(RedisWritesStopped\).*background save"),
    ],
)
def test_redis_refusing_writes_is_degraded_exit_1(redis_refusing_writes, mode, reason):
    with redis_refusing_writes(mode), pytest.raises(CommandError, match=reason) as excinfo:
        run_json("redis_health")
    assert excinfo.value.returncode == EXIT_FAILED
