"""pytest plugin: a dedicated redis-server for the whole test session.

Loaded with `-p tests.plugins.redis_server` so it runs before pytest-django
imports the settings: it picks the port and exports REDIS_URL first, then starts
the server in `pytest_configure`. Tests can kill and restart it through the
`redis_server` fixture; every test starts with an empty, running server.
"""

from __future__ import annotations

import os

import pytest
import redis

from agentapi_admin.redis_process import RedisProcess, free_port
from tests.faults.redis_faults import PROTECTED_CONFIGS_ARGS, writes_refused

_PORT = free_port()
_TEST_ENV = {
    "READ_ENV_FILE": "false",
    "REDIS_ENABLE": "true",
    "REDIS_URL": f"redis://127.0.0.1:{_PORT}/0",
    "UPSTASH_REDIS_URL": "",
    "REDIS_PASSWORD": "",
    "REDIS_PROTOCOL": "native",
    # Short timeouts keep outage tests quick; a refused connection fails at once anyway.
    "REDIS_CONNECTION_TIMEOUT": "1s",
}
os.environ.update(_TEST_ENV)
os.environ["DEBUG"] = "true"  # settings refuse dev secrets otherwise; Django still runs tests with DEBUG off

_server = RedisProcess(port=_PORT, extra_args=PROTECTED_CONFIGS_ARGS)


def pytest_configure(config: pytest.Config) -> None:
    _server.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _server.stop()


@pytest.fixture(scope="session")
def redis_server() -> RedisProcess:
    """The session's redis-server process (kill()/restart() it to simulate outages)."""
    return _server


@pytest.fixture
def redis_client() -> redis.Redis:
    """A client of its own on the test server, independent of the app's pool."""
    client = redis.Redis(port=_server.port, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def redis_refusing_writes(redis_server):
    """Make the test server refuse writes: `with redis_refusing_writes("oom" | "readonly" | "misconf"): ...`."""

    def refuse(mode: str):
        return writes_refused(redis_server, mode)

    return refuse


def _forget_process_state() -> None:
    # Outage tests open the in-process Redis breaker and cache breaker objects; a test
    # that inherited them would see "Redis down" for CIRCUIT_BREAKER_TIMEOUT.
    from resilience.breakers.process import redis_breaker
    from resilience.breakers.registry import forget_breakers
    from resilience.selectors import write_probe_forget
    from tenants.api.gateway import routes
    from tenants.cache import cache_sync

    write_probe_forget()
    routes.forget()  # routes name tenants of the previous test's database
    cache_sync.behind, cache_sync.failures_seen = False, redis_breaker.failures_total
    redis_breaker.reset()
    redis_breaker._overrides.clear()
    redis_breaker.transitions.clear()
    forget_breakers()


@pytest.fixture(autouse=True)
def _fresh_redis():
    """Start every test with a running, empty Redis and a closed Redis breaker, whatever the previous test did."""
    if not _server.running():
        _server.start()
    with redis.Redis(port=_server.port) as client:
        client.flushall()
    _forget_process_state()
    yield
    if not _server.running():
        _server.start()
    _forget_process_state()
