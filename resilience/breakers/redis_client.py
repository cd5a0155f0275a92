"""Redis clients whose every command passes through the in-process Redis breaker."""

from __future__ import annotations

import redis
from django_redis.client import DefaultClient, SentinelClient
from redis.client import Pipeline

from agentapi_admin import metrics
from resilience.breakers.process import redis_breaker


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

    def pipeline(self, transaction: bool = True, shard_hint=None) -> BreakerPipeline:
        return BreakerPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class BreakerCacheClient(DefaultClient):
    """django-redis client (CLIENT_CLASS) whose connections are BreakerRedis clients."""

    def __init__(self, server, params, backend) -> None:
        options = dict(params.get("OPTIONS", {}))
        options.setdefault("REDIS_CLIENT_CLASS", "resilience.breakers.redis_client.BreakerRedis")
        super().__init__(server, {**params, "OPTIONS": options}, backend)


class BreakerSentinelClient(BreakerCacheClient, SentinelClient):
    """django-redis's SentinelClient (master found through the sentinels) behind the Redis breaker."""
