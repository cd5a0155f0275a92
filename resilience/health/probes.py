"""How the health snapshot talks to Redis: the app's native pool or Upstash's REST API.

Both probes answer the same questions in the same shapes, so the snapshot does not
care which one it has. A command a provider refuses raises; the snapshot turns
that into "n/a" for the fields it would have filled.
"""

from __future__ import annotations

import contextlib
import time
from typing import cast
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis._parsers.helpers import parse_info
from redis.cluster import RedisCluster

from resilience.breakers.redis_client import merged_info
from resilience.connection import get_redis, redacted_url
from resilience.exceptions import REDIS_WRITE_REFUSED_ERRORS
from resilience.health.rest import UpstashRestClient


class Probe:
    """The questions the health snapshot asks a Redis server."""

    transport = ""

    @property
    def target(self) -> str:
        """Return the redacted address probed."""
        raise NotImplementedError("subclasses of Probe must provide a target property")

    @property
    def tls(self) -> bool:
        raise NotImplementedError("subclasses of Probe must provide a tls property")

    @property
    def sentinel_configured(self) -> bool:
        """Tell whether the app reaches Redis through Sentinel (REDIS_SENTINELS), whatever CLIENT LIST says."""
        return False

    # True when the probe sees a whole Redis Cluster (REDIS_CLUSTER_NODES), not one server.
    cluster = False

    def execute(self, *args):
        """Run a raw command and return its reply."""
        raise NotImplementedError("subclasses of Probe must provide an execute() method")

    def ping_ms(self) -> float:
        """Return one PING round trip in milliseconds, measured here."""
        started = time.perf_counter()
        # MISCONF refuses even PING: the server answered, and the write check reports why.
        with contextlib.suppress(*REDIS_WRITE_REFUSED_ERRORS):
            self.execute("PING")
        return (time.perf_counter() - started) * 1000

    def info(self) -> dict:
        """Return INFO everything as a dict (redis-py's parse)."""
        raise NotImplementedError("subclasses of Probe must provide an info() method")

    def config(self, name: str) -> str | None:
        """Return one CONFIG GET value, or None when the server does not have it."""
        reply = self.execute("CONFIG", "GET", name)
        if isinstance(reply, dict):  # RESP3, or redis-py's parse
            pairs = {_text(k): v for k, v in reply.items()}
        else:
            flat = list(reply or [])
            pairs = {_text(k): v for k, v in zip(flat[::2], flat[1::2], strict=False)}
        value = pairs.get(name)
        return _text(value) if value is not None else None

    def slowlog(self, n: int) -> list[dict]:
        """Return up to n SLOWLOG entries as dicts: id, start_time, duration (µs), args."""
        entries = []
        for entry in self.execute("SLOWLOG", "GET", n) or []:
            if isinstance(entry, dict):
                command = entry.get("command", b"")
                args = _text(command).split(" ") if command else []
                entries.append(
                    {"id": entry["id"], "start_time": entry["start_time"], "duration": entry["duration"], "args": args}
                )
            else:
                entries.append(
                    {"id": entry[0], "start_time": entry[1], "duration": entry[2], "args": [_text(a) for a in entry[3]]}
                )
        return entries

    def client_names(self) -> list[str]:
        """Return the names of connected clients (CLIENT LIST)."""
        reply = self.execute("CLIENT", "LIST")
        if isinstance(reply, list):  # redis-py parses into dicts
            return [str(c.get("name", "")) for c in reply]
        names = []
        for line in _text(reply).splitlines():
            fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
            names.append(fields.get("name", ""))
        return names

    def scan(self, cursor: int, count: int) -> tuple[int, list[str]]:
        """Return (next cursor, keys) of one SCAN step."""
        reply = self.execute("SCAN", cursor, "COUNT", count)
        next_cursor, keys = reply
        return int(next_cursor), [_text(k) for k in keys]

    def dbsize(self) -> int:
        return int(self.execute("DBSIZE"))

    def pools(self) -> list[dict]:
        """Return the app's own connection pools (in use / idle / max), where the transport has any."""
        return []


class NativeProbe(Probe):
    """Probe through the app's own redis-py pool (so the pool's health is what is measured)."""

    transport = "native"

    def __init__(self, client: redis.Redis | None = None) -> None:
        # Another client (a replica, a test server) may be probed; the app's own pool by default.
        if client is None:
            # The app's pool, but not its breaker-wrapped client: a health probe must reach the
            # server and report the real cause, not "breaker open".
            client = redis.Redis(connection_pool=get_redis().connection_pool)
        self.own_pool = (
            client.connection_pool is get_redis().connection_pool if settings.RESILIENCE_REDIS_ENABLED else False
        )
        self.client = client

    @property
    def target(self) -> str:
        if self.own_pool:
            return redacted_url(settings.RESILIENCE_REDIS_URL)
        kwargs = self.client.connection_pool.connection_kwargs
        return f"redis://{kwargs.get('host', 'unix')}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"

    @property
    def sentinel_configured(self) -> bool:
        return self.own_pool and bool(getattr(settings, "RESILIENCE_REDIS_SENTINELS", None))

    @property
    def tls(self) -> bool:
        if self.own_pool:
            return urlsplit(settings.RESILIENCE_REDIS_URL).scheme == "rediss"
        return issubclass(self.client.connection_pool.connection_class, redis.SSLConnection)

    def execute(self, *args):
        return self.client.execute_command(*args)

    def info(self) -> dict:
        return self.client.info("everything")

    def pools(self) -> list[dict]:
        if not self.own_pool:
            return []
        seen: dict[int, dict] = {}
        for alias, cache in settings.CACHES.items():
            if not cache["BACKEND"].startswith("django_redis"):
                continue
            pool = get_redis(alias).connection_pool
            entry = seen.get(id(pool))
            if entry is None:
                in_use = len(pool._get_in_use_connections())
                idle = len(pool._get_free_connections())
                entry = seen[id(pool)] = {
                    "aliases": [],
                    "in_use": in_use,
                    "idle": idle,
                    "max": pool.max_connections,
                }
            entry["aliases"].append(alias)
        return list(seen.values())


class ClusterProbe(Probe):
    """Probe the app's Redis Cluster (REDIS_CLUSTER_NODES): INFO summed over the masters, plus every node."""

    transport = "native"
    cluster = True

    def __init__(self, client: RedisCluster | None = None) -> None:
        # With REDIS_CLUSTER_NODES, get_redis() is the app's BreakerRedisCluster.
        self.client: RedisCluster = client or cast(RedisCluster, get_redis())

    @property
    def target(self) -> str:
        return redacted_url(settings.RESILIENCE_REDIS_URL)

    @property
    def tls(self) -> bool:
        return bool(settings.RESILIENCE_REDIS_TLS)

    def execute(self, *args, **options):
        # The cluster client's own routing, without the app's breaker: report the real cause.
        return RedisCluster.execute_command(self.client, *args, **options)

    def info(self) -> dict:
        per_master = self.execute("INFO", "everything", target_nodes=RedisCluster.PRIMARIES)
        return merged_info(list(per_master.values()))  # as the cluster client's info()

    def config(self, name: str) -> str | None:
        values = self.execute("CONFIG", "GET", name, target_nodes=RedisCluster.PRIMARIES)
        found = {_text(reply.get(name)) for reply in values.values() if reply.get(name) is not None}
        return ", ".join(sorted(found)) if found else None

    def slowlog(self, n: int) -> list[dict]:
        replies = self.execute("SLOWLOG", "GET", n, target_nodes=RedisCluster.PRIMARIES)
        entries = []
        for reply in replies.values():
            entries += [
                {"id": e["id"], "start_time": e["start_time"], "duration": e["duration"], "args": _args(e)}
                for e in reply
            ]
        return entries

    def scan(self, cursor: int, count: int) -> tuple[int, list[str]]:
        next_cursor, keys = self.client.scan(cursor=cursor, count=count)  # every master in turn
        return int(next_cursor), [_text(k) for k in keys]

    def dbsize(self) -> int:
        return int(self.execute("DBSIZE", target_nodes=RedisCluster.PRIMARIES))

    def pools(self) -> list[dict]:
        entries = []
        for node in sorted(self.client.get_nodes(), key=lambda n: n.name):
            pool = node.redis_connection.connection_pool if node.redis_connection else None
            if pool is None:
                continue
            entries.append(
                {
                    "aliases": [f"{node.name} ({'primary' if node.server_type == 'primary' else 'replica'})"],
                    "in_use": len(pool._get_in_use_connections()),
                    "idle": len(pool._get_free_connections()),
                    "max": pool.max_connections,
                }
            )
        return entries


def _args(entry) -> list[str]:
    if isinstance(entry, dict):
        command = entry.get("command", b"")
        return _text(command).split(" ") if command else []
    return [_text(a) for a in entry[3]]


class RestProbe(Probe):
    """Probe through Upstash's REST API (REDIS_PROTOCOL=rest)."""

    transport = "rest"

    def __init__(self) -> None:
        self.client = UpstashRestClient(
            settings.RESILIENCE_UPSTASH_REST_URL,
            settings.RESILIENCE_UPSTASH_REST_TOKEN,
            timeout=settings.RESILIENCE_REDIS_TIMEOUT,
        )

    @property
    def target(self) -> str:
        return redacted_url(settings.RESILIENCE_UPSTASH_REST_URL)

    @property
    def tls(self) -> bool:
        return urlsplit(settings.RESILIENCE_UPSTASH_REST_URL).scheme == "https"

    def execute(self, *args):
        return self.client.execute(*args)

    def info(self) -> dict:
        return parse_info(self.execute("INFO"))


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def default_probe() -> Probe:
    """Return the probe REDIS_PROTOCOL and REDIS_CLUSTER_NODES ask for."""
    if settings.RESILIENCE_REDIS_PROTOCOL == "rest":
        return RestProbe()
    return ClusterProbe() if settings.RESILIENCE_REDIS_CLUSTER_NODES else NativeProbe()
