"""pytest plugin: a dedicated redis-server (or Redis Cluster) for the whole test session.

Loaded with `-p tests.plugins.redis_server` so it runs before pytest-django
imports the settings: it picks the port and exports REDIS_URL first, then starts
the server in `pytest_configure`. Tests can kill and restart it through the
`redis_server` fixture; every test starts with an empty, running server.

With AGENTAPI_TEST_REDIS=cluster the app's Redis is a real cluster of 3 masters and
3 replicas instead (REDIS_CLUSTER_NODES), started once for the session. Tests that
are inherently single-node (they kill, pause or reconfigure the one server) are
marked `standalone_redis` (or request `redis_server`) and are deselected there;
tests marked `cluster_redis` need the cluster and are deselected in the default run.
"""

from __future__ import annotations

import os

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from agentapi_admin.redis_process import RedisClusterProcesses, RedisProcess, free_port
from tests.faults.redis_faults import PROTECTED_CONFIGS_ARGS, writes_refused

MODE = os.environ.get("AGENTAPI_TEST_REDIS", "standalone")
if MODE not in ("standalone", "cluster"):
    raise pytest.UsageError(f"AGENTAPI_TEST_REDIS={MODE!r} is invalid: expected standalone or cluster")
CLUSTER = MODE == "cluster"

_PORT = free_port()
_cluster = RedisClusterProcesses() if CLUSTER else None
_TEST_ENV = {
    "READ_ENV_FILE": "false",
    "REDIS_ENABLE": "true",
    "REDIS_URL": f"redis://127.0.0.1:{_PORT}/0",
    "REDIS_CLUSTER_NODES": _cluster.seeds if _cluster else "",
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
    config.addinivalue_line(
        "markers", "standalone_redis: needs the single redis-server (kills or reconfigures it); not run on a cluster"
    )
    config.addinivalue_line("markers", "cluster_redis: needs the app on a Redis Cluster (AGENTAPI_TEST_REDIS=cluster)")
    _server.start()
    if _cluster:
        _cluster.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _server.stop()
    if _cluster:
        _cluster.stop()


def _single_node(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("standalone_redis") is not None or "redis_server" in fixtures


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what the chosen Redis cannot run: single-node tests on a cluster, cluster tests otherwise."""
    if CLUSTER:
        keep = [item for item in items if not _single_node(item)]
    else:
        keep = [item for item in items if item.get_closest_marker("cluster_redis") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def redis_cluster() -> RedisClusterProcesses:
    """A real Redis Cluster: the app's under AGENTAPI_TEST_REDIS=cluster, else one started for the tests that ask."""
    if _cluster:
        yield _cluster
        return
    own = RedisClusterProcesses().start()
    yield own
    own.stop()


def cluster_client(cluster: RedisClusterProcesses, **kwargs) -> RedisCluster:
    """Return a cluster client on `cluster` that answers as the app's does (INFO and SCAN of the whole cluster).

    It is the app's client class without the in-process Redis breaker, so a test that opens the
    breaker can still look at Redis.
    """
    from resilience.breakers.redis_client import BreakerRedisCluster

    nodes = [ClusterNode("127.0.0.1", node.port) for node in cluster.nodes if node.running()]
    return BreakerRedisCluster(startup_nodes=nodes, **kwargs).without_breaker()


@pytest.fixture(scope="session")
def redis_server() -> RedisProcess:
    """The session's redis-server process (kill()/restart() it to simulate outages)."""
    return _server


@pytest.fixture
def redis_client() -> redis.Redis:
    """A client of its own on the app's Redis (a cluster client on a cluster), independent of the app's pool."""
    if _cluster:
        client = cluster_client(_cluster, decode_responses=True)
        yield client
        client.close()
        return
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
    if _cluster:
        _flush_cluster()
    _forget_process_state()
    yield
    if not _server.running():
        _server.start()
    if _cluster and not all(node.running() for node in _cluster.nodes):
        for node in _cluster.nodes:
            node.start()
        _cluster.wait_ok()
    _forget_process_state()


def _flush_cluster() -> None:
    for node in _cluster.master_nodes():
        with redis.Redis(port=node.port) as client:
            client.flushall()


def redis_contents(client) -> dict:
    """Return {key: (type, value)} for every key (SCAN), values read by type.

    Hashes, sets and sorted sets are compared by value, not DUMP: a large one's DUMP follows
    its dict order, which incremental rehashing changes on plain reads.
    """
    readers = {
        "hash": lambda name: sorted(client.hgetall(name).items()),
        "set": lambda name: sorted(client.smembers(name)),
        "zset": lambda name: client.zrange(name, 0, -1, withscores=True),
    }
    contents = {}
    for name in client.scan_iter(count=1000):
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        try:
            value = readers[kind](name) if kind in readers else client.dump(name)
        except UnicodeDecodeError:  # binary members on a decoding client: their serialisation is stable enough
            value = client.dump(name)
        contents[name] = (kind, repr(value))
    return contents
