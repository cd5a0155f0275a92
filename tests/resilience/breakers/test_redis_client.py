"""BreakerRedis.evalsha: scripts reuse the connections of their last clean exchanges, and recover as pooled ones do."""

from __future__ import annotations

import time

import pytest
import redis

from resilience.breakers.redis_client import _kept_connections
from resilience.connection import get_redis


def test_scripts_reuse_one_connection(redis_server):
    client = get_redis()
    sha = client.script_load("return 1")
    assert client.evalsha(sha, 0) == 1
    kept = list(_kept_connections[client.connection_pool])
    assert len(kept) == 1
    for _ in range(20):
        assert client.evalsha(sha, 0) == 1
    assert _kept_connections[client.connection_pool] == kept  # sequential scripts: the same connection


def test_a_kept_connection_closed_by_a_restart_reconnects_at_once(redis_server):
    client = get_redis()
    sha = client.script_load("return 1")
    assert client.evalsha(sha, 0) == 1
    redis_server.kill()
    redis_server.start()  # the kept connection is closed; the script cache is empty
    client.script_load("return 1")
    started = time.monotonic()
    assert client.evalsha(sha, 0) == 1
    assert time.monotonic() - started < 0.5  # a fresh pooled connection, not a retry after backoff


def test_a_kept_connection_closed_by_the_pool_reconnects(redis_server):
    client = get_redis()
    sha = client.script_load("return 2")
    assert client.evalsha(sha, 0) == 2
    client.connection_pool.disconnect()
    assert client.evalsha(sha, 0) == 2


def test_error_replies_reach_the_caller_and_the_connection_stays_usable(redis_server):
    client = get_redis()
    failing = client.script_load("return redis.error_reply('BOOM from the script')")
    working = client.script_load("return 3")
    with pytest.raises(redis.exceptions.ResponseError, match="BOOM"):
        client.evalsha(failing, 0)
    with pytest.raises(redis.exceptions.NoScriptError):
        client.evalsha("0" * 40, 0)
    assert client.evalsha(working, 0) == 3
