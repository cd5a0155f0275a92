"""Redis clients whose every command passes through the in-process Redis breaker."""

from __future__ import annotations

import copy
import os
import threading
import time
import weakref

import redis
from django_redis.client import DefaultClient, SentinelClient
from django_redis.client.default import _main_exceptions
from django_redis.exceptions import ConnectionInterrupted
from django_redis.pool import ConnectionFactory
from redis.client import Pipeline
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException

from agentapi_admin import metrics
from resilience.breakers.process import redis_breaker

# Connections BreakerRedis.evalsha took from a pool and keeps between scripts, per pool (at
# most one per script running at once). They stay counted as in use by the pool, whose
# disconnect() still closes them; a forked child starts without them.
_kept_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
os.register_at_fork(after_in_child=_kept_connections.clear)


def _evalsha_on(connection, args: tuple):
    connection.send_command("EVALSHA", *args)
    return connection.read_response()


class BreakerPipeline(Pipeline):
    """A pipeline that sends its batch through the Redis breaker."""

    def execute(self, raise_on_error: bool = True):
        with metrics.counting_redis_errors():
            return redis_breaker.call(super().execute, raise_on_error)


class BreakerRedis(redis.Redis):
    """A redis-py client that fails fast while the Redis breaker is open."""

    def execute_command(self, *args, **options):
        with metrics.counting_redis_errors():
            return redis_breaker.call(super().execute_command, *args, **options)

    def evalsha(self, sha, numkeys, *keys_and_args):
        """Run a loaded script and return its raw reply, on a connection kept for scripts when one is idle."""
        with metrics.counting_redis_errors():
            return redis_breaker.call(self._evalsha_direct, sha, numkeys, *keys_and_args)

    def _evalsha_direct(self, *args):
        # Every service-API request runs one script. Borrowing from redis-py's pool (a readiness
        # poll, observability hooks, a release event) and its generic command path (HIMPORT
        # parsing, response callbacks) cost more CPU than the gateway's own Python; scripts
        # reuse the connections of their last clean exchanges instead.
        if self.connection is not None:  # a single-connection client keeps its own locking
            return super().execute_command("EVALSHA", *args)
        pool = self.connection_pool
        kept = _kept_connections.get(pool)
        if kept is None:
            kept = _kept_connections.setdefault(pool, [])
        connection = kept.pop() if kept else None
        if connection is not None:
            if connection.health_check_interval and time.monotonic() > connection.next_health_check:
                # Idle long enough to need a health check: the pool checks it without retry backoff.
                pool.release(connection)
            else:
                try:
                    reply = _evalsha_on(connection, args)
                except BaseException as exc:
                    pool.release(connection)
                    # Closed by the server while kept (a restart, its idle timeout, a failover): the
                    # script never ran, so reconnect below as a borrowed connection would have. A
                    # timeout or an error reply is the answer, as on a borrowed connection.
                    if not isinstance(exc, redis.exceptions.ConnectionError):
                        raise
                else:
                    kept.append(connection)
                    return reply
        connection = pool.get_connection()
        try:
            reply = connection.retry.call_with_retry(
                lambda: _evalsha_on(connection, args), lambda error: connection.disconnect()
            )
        except BaseException:
            pool.release(connection)
            raise
        kept.append(connection)
        return reply

    def pipeline(self, transaction: bool = True, shard_hint=None) -> BreakerPipeline:
        return BreakerPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    def without_breaker(self) -> redis.Redis:
        """Return a client on the same pool whose commands skip the Redis breaker."""
        return redis.Redis(connection_pool=self.connection_pool)


class BreakerCacheClient(DefaultClient):
    """django-redis client (CLIENT_CLASS) whose connections are BreakerRedis clients."""

    def __init__(self, server, params, backend) -> None:
        options = dict(params.get("OPTIONS", {}))
        options.setdefault("REDIS_CLIENT_CLASS", "resilience.breakers.redis_client.BreakerRedis")
        super().__init__(server, {**params, "OPTIONS": options}, backend)


class BreakerSentinelClient(BreakerCacheClient, SentinelClient):
    """django-redis's SentinelClient (master found through the sentinels) behind the Redis breaker."""


# ------------------------------------------------------------------- Redis Cluster
# A SCAN cursor over the whole cluster: the cursor of one master times this base, plus
# that master's index among the masters sorted by address. A cluster has at most one
# master per slot, so the index always fits.
_CLUSTER_CURSOR_BASE = 16384


class BreakerRedisCluster(RedisCluster):
    """A redis-py cluster client behind the Redis breaker whose SCAN walks every master."""

    _guarded = True

    def execute_command(self, *args, **options):
        if not self._guarded:
            return self._execute_reporting_crossslot(*args, **options)
        with metrics.counting_redis_errors():
            return redis_breaker.call(self._execute_reporting_crossslot, *args, **options)

    def _execute_reporting_crossslot(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except RedisClusterException as exc:
            if "same key slot" not in str(exc):
                raise
            # redis-py refuses a multi-slot command before sending it; report it as Redis would
            # (CROSSSLOT), a RedisError that callers already handle, not an unexpected exception.
            raise redis.exceptions.ClusterCrossSlotError(str(exc)) from exc

    def pipeline(self, transaction=None, shard_hint=None) -> BreakerClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return BreakerClusterPipeline(
            parent=self,
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.nodes_manager.startup_nodes,
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )

    # Sources of the scripts this process loaded or registered, by SHA1: a master promoted by a
    # failover has an empty script cache, and a pipelined EVALSHA cannot be retried without them.
    _script_sources: dict[str, str] = {}

    def script_load(self, script):
        sha = super().script_load(script)
        self._script_sources[sha] = script
        return sha

    def register_script(self, script):
        registered = super().register_script(script)
        self._script_sources[registered.sha] = script
        return registered

    def evalsha_or_eval(self, sha: str, *args):
        """Run EVALSHA; when the node lacks the script and this process knows its source, EVAL it instead."""
        try:
            return self._execute_reporting_crossslot("EVALSHA", sha, *args)
        except redis.exceptions.NoScriptError:
            source = self._script_sources.get(sha)
            if source is None:
                raise
            return self._execute_reporting_crossslot("EVAL", source, *args)

    def without_breaker(self) -> BreakerRedisCluster:
        """Return a view of this client (same nodes and pools) whose commands skip the Redis breaker."""
        view = copy.copy(self)
        view._guarded = False
        return view

    def info(self, section=None, *args, **kwargs):
        """Return INFO of the whole cluster (counters and memory summed over the masters), or of `target_nodes`."""
        if "target_nodes" in kwargs:
            return super().info(section, *args, **kwargs)
        per_master = super().info(section, *args, target_nodes=self.PRIMARIES, **kwargs)
        return merged_info(list(per_master.values()))

    def sorted_primaries(self) -> list:
        """Return the masters in a stable order (by address), the order SCAN visits them."""
        return sorted(self.get_primaries(), key=lambda node: node.name)

    def scan(self, cursor=0, match=None, count=None, _type=None, **kwargs):
        """SCAN every master in turn with one integer cursor, so loops written for one server cover the cluster."""
        if "target_nodes" in kwargs:
            return super().scan(cursor=cursor, match=match, count=count, _type=_type, **kwargs)
        primaries = self.sorted_primaries()
        node_cursor, index = divmod(int(cursor), _CLUSTER_CURSOR_BASE)
        if index >= len(primaries):
            return 0, []
        node = primaries[index]
        cursors, names = super().scan(cursor=node_cursor, match=match, count=count, _type=_type, target_nodes=node)
        # With target_nodes the cluster client answers {node name: cursor}; redis-py types it as Redis.scan's int.
        node_cursor = int(cursors[node.name])  # type: ignore[index]
        if node_cursor == 0:
            index, node_cursor = index + 1, 0
            if index >= len(primaries):
                return 0, names
        return node_cursor * _CLUSTER_CURSOR_BASE + index, names

    def scan_iter(self, match=None, count=None, _type=None, **kwargs):
        if "target_nodes" in kwargs:
            yield from super().scan_iter(match=match, count=count, _type=_type, **kwargs)
            return
        cursor = 0
        while True:
            cursor, names = self.scan(cursor=cursor, match=match, count=count, _type=_type)
            yield from names
            if not cursor:
                return


_SUMMED_INFO = (
    "used_memory",
    "used_memory_peak",
    "maxmemory",
    "connected_clients",
    "blocked_clients",
    "connected_slaves",
    "evicted_keys",
    "expired_keys",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "rdb_changes_since_last_save",
)


def merged_info(infos: list[dict]) -> dict:
    """Return one INFO for several masters: counters and memory summed, statuses the worst, the rest the first's."""
    if not infos:
        return {}
    merged = dict(infos[0])
    for name in _SUMMED_INFO:
        values = [info[name] for info in infos if isinstance(info.get(name), int | float)]
        if values:
            merged[name] = sum(values)
    for name in ("used_memory", "used_memory_peak", "maxmemory"):
        if name in merged:
            merged[f"{name}_human"] = _human_bytes(merged[name])
    # Only the fields the asked section has: INFO commandstats must stay all cmdstat_* entries.
    if "mem_fragmentation_ratio" in merged:
        merged["mem_fragmentation_ratio"] = max(info.get("mem_fragmentation_ratio") or 0 for info in infos)
    if "uptime_in_seconds" in merged:
        merged["uptime_in_seconds"] = min(info.get("uptime_in_seconds", 0) for info in infos)
    if "run_id" in merged:
        merged["run_id"] = ",".join(str(info.get("run_id")) for info in infos)
    if "rdb_last_save_time" in merged:
        merged["rdb_last_save_time"] = min(info.get("rdb_last_save_time") or 0 for info in infos) or None
    for name in ("rdb_last_bgsave_status", "aof_last_write_status"):
        if name in merged:
            merged[name] = "err" if "err" in {info.get(name) for info in infos} else merged[name]
    # Per-database keyspace, per-command stats (cmdstat_*), per-error stats: numbers summed by name.
    nested: dict[str, dict] = {}
    for info in infos:
        for name, value in info.items():
            if not isinstance(value, dict):
                continue
            entry = nested.setdefault(name, {})
            for field, number in value.items():
                if not isinstance(number, int | float):
                    entry.setdefault(field, number)
                elif field in ("avg_ttl", "usec_per_call"):
                    entry[field] = max(entry.get(field, 0), number)  # an average: the worst master's
                else:
                    entry[field] = entry.get(field, 0) + number
    merged.update(nested)
    return merged


def _human_bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.2f}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    return f"{value}B"


class BreakerClusterPipeline(ClusterPipeline):
    """A cluster pipeline that also takes scripts and multi-key deletes.

    redis-py's cluster pipelines refuse EVAL/EVALSHA and DEL/UNLINK/EXISTS of several keys.
    Here plain commands still travel in pipelined batches, while a script runs on its
    own between them (in the order it was queued) and a multi-key DEL/UNLINK/EXISTS becomes
    one command per key whose counts are summed: the replies are those of a plain pipeline.
    """

    def __init__(self, *args, parent: BreakerRedisCluster, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._parent = parent
        self._transaction = bool(kwargs.get("transaction"))
        # ("batch", args, options, group) for pipelined commands, ("alone", args, {}, None) for scripts.
        self._ops: list[tuple[str, tuple, dict, int | None]] = []

    def __len__(self) -> int:
        # Commands as the caller queued them: a multi-key delete counts once.
        return len({index if group is None else group for index, (*_, group) in enumerate(self._ops)})

    def execute_command(self, *args, **options):
        if self._transaction:
            return super().execute_command(*args, **options)
        self._ops.append(("batch", args, options, None))
        return self

    # redis-py's ClusterPipeline.eval() is an argument-less stub that refuses; this one runs the script.
    def eval(self, script, numkeys, *keys_and_args):  # type: ignore[override]
        return self._alone("EVAL", script, numkeys, *keys_and_args)

    def evalsha(self, sha, numkeys, *keys_and_args):
        return self._alone("EVALSHA", sha, numkeys, *keys_and_args)

    def _alone(self, *args):
        if self._transaction:
            raise RedisClusterException("scripts cannot run inside a MULTI on a cluster pipeline; run them alone")
        self._ops.append(("alone", args, {}, None))
        return self

    def delete(self, *names):
        return self._per_key("DEL", names)

    def exists(self, *names):
        return self._per_key("EXISTS", names)

    def unlink(self, *names):
        return self._per_key("UNLINK", names)

    def _per_key(self, command: str, names):
        if self._transaction:
            return super().execute_command(command, *names)
        group = len(self._ops)
        for name in names:
            self._ops.append(("batch", (command, name), {}, group))
        return self

    def execute(self, raise_on_error: bool = True):
        if not self._parent._guarded:
            return self._execute(raise_on_error)
        with metrics.counting_redis_errors():
            return redis_breaker.call(self._execute, raise_on_error)

    def _execute(self, raise_on_error: bool):
        if self._transaction:
            return super().execute(raise_on_error)
        ops, self._ops = self._ops, []
        replies: list = []
        batch: list = []
        for kind, args, options, _ in [*ops, ("alone", (), {}, None)]:
            if kind == "batch":
                batch.append((args, options))
                continue
            if batch:
                for batch_args, batch_options in batch:
                    super().execute_command(*batch_args, **batch_options)
                replies += super().execute(raise_on_error)
                batch = []
            if args:
                try:
                    if args[0] == "EVALSHA":
                        replies.append(self._parent.evalsha_or_eval(*args[1:]))
                    else:
                        replies.append(self._parent._execute_reporting_crossslot(*args))
                except redis.exceptions.ResponseError as exc:
                    if raise_on_error:
                        raise
                    replies.append(exc)
        return self._fold(ops, replies)

    @staticmethod
    def _fold(ops, replies: list) -> list:
        folded: list = []
        groups: dict[int, int] = {}
        for (_, _, _, group), reply in zip(ops, replies, strict=True):
            if group is None:
                folded.append(reply)
            elif group in groups:
                folded[groups[group]] += reply
            else:
                groups[group] = len(folded)
                folded.append(reply)
        return folded

    def reset(self):
        self._ops = []
        super().reset()


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis CONNECTION_FACTORY for REDIS_CLUSTER_NODES: one BreakerRedisCluster per process and settings."""

    # Process-global, as django-redis keeps its pools: Django builds a cache client per thread.
    _clusters: dict[tuple, BreakerRedisCluster] = {}
    _lock = threading.Lock()

    def connect(self, url: str) -> BreakerRedisCluster:
        nodes = tuple(tuple(node) for node in self.options["CLUSTER_NODES"])
        kwargs = dict(self.pool_cls_kwargs)
        cache_key = (nodes, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        client = self._clusters.get(cache_key)
        if client is None:
            with self._lock:
                client = self._clusters.get(cache_key)
                if client is None:
                    client = self._clusters[cache_key] = redis_breaker.call(self._build, nodes, kwargs)
        return client

    @staticmethod
    def _build(nodes: tuple, kwargs: dict) -> BreakerRedisCluster:
        try:
            return BreakerRedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                # A slot without a master fails only the keys in it, not the whole cluster.
                require_full_coverage=False,
                **kwargs,
            )
        except RedisClusterException as exc:
            # redis-py raises a bare Exception subclass when no seed answers; to the app that is an outage.
            raise redis.exceptions.ConnectionError(f"no Redis Cluster seed node answered: {exc}") from exc

    def disconnect(self, connection: BreakerRedisCluster) -> None:
        connection.disconnect_connection_pools()


class BreakerClusterClient(BreakerCacheClient):
    """django-redis client (CLIENT_CLASS) for Redis Cluster, behind the Redis breaker."""

    def get_many(self, keys, version=None, client=None) -> dict:
        # MGET needs every key in one slot; the cache's keys are spread over the cluster.
        client = client or self.get_client(write=False)
        if not keys:
            return {}
        made = {self.make_key(key, version=version): key for key in keys}
        try:
            values = client.mget_nonatomic(list(made))
        except _main_exceptions as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return {made[name]: self.decode(value) for name, value in zip(made, values, strict=True) if value is not None}
