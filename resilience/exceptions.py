"""Errors raised by the resilience app, and the one classification of "Redis is unavailable"."""

import redis
from django.db import InterfaceError, OperationalError
from django_redis.exceptions import ConnectionInterrupted
from redis._parsers.base import BaseParser


class RedisDisabled(RuntimeError):
    """Redis was requested while REDIS_ENABLE=false."""


class SessionNotFound(LookupError):
    """The session to act on does not exist (expired or already revoked)."""


class RedisUnavailable(redis.exceptions.ConnectionError):
    """The Redis breaker is open: the command was refused without touching the network."""


class RedisWritesStopped(redis.exceptions.ResponseError):
    """Redis refuses writes because its last background save failed (a `MISCONF` reply)."""


# redis-py turns an error reply into a class by its first word; it has none for MISCONF,
# which would otherwise be a bare ResponseError, indistinguishable from a bug in a command.
BaseParser.EXCEPTION_CLASSES.setdefault("MISCONF", RedisWritesStopped)

# Redis answers, but refuses to write: full with `noeviction` (OOM), a read-only replica
# (READONLY), a failed background save with `stop-writes-on-bgsave-error yes` (MISCONF), or
# a replica cut off from its primary with `replica-serve-stale-data no` (MASTERDOWN).
REDIS_WRITE_REFUSED_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    RedisWritesStopped,
    redis.exceptions.MasterDownError,
)


class ClusterNotConfigured(redis.exceptions.ResponseError):
    """The app reaches a Redis Cluster node through a single-node client (REDIS_CLUSTER_NODES unset)."""


# A cluster that cannot serve this key here and now: redirected (MOVED, ASK: a single-node
# client on a cluster node, or slots moving), keys spread over several slots (CROSSSLOT),
# slots without a master (CLUSTERDOWN, TRYAGAIN during a resharding, a slot nobody covers).
REDIS_CLUSTER_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterCrossSlotError,
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
    ClusterNotConfigured,
)

# Everything that means "Redis cannot serve this request now", as opposed to a bug in a
# command: unreachable, timed out, still loading its dataset, refused by the open Redis
# breaker (RedisUnavailable), turned off (REDIS_ENABLE=false), refusing writes, a cluster
# redirecting or refusing the key (MOVED, ASK, CROSSSLOT, CLUSTERDOWN), wrapped by
# django-redis (ConnectionInterrupted), or a socket-level failure redis-py did not wrap (the
# built-in ConnectionError and TimeoutError; the Upstash REST client's RestUnavailable is one).
# Not every OSError: a file error in a view is a bug, not an outage. Catch this tuple wherever
# Redis is needed; where a write is needed it includes the refusals.
REDIS_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionInterrupted,
    RedisDisabled,
    ConnectionError,
    TimeoutError,
    *REDIS_WRITE_REFUSED_ERRORS,
    *REDIS_CLUSTER_ERRORS,
)

# The database cannot be reached (down, renamed, refusing connections, connection killed),
# as opposed to a query the database rejected (IntegrityError, ProgrammingError: bugs).
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def database_unavailable(exc: BaseException) -> bool:
    """Return True if `exc`, or an error it was raised from (`raise ... from`), means the database is unavailable."""
    return _in_chain(exc, DATABASE_UNAVAILABLE_ERRORS)


def _in_chain(exc: BaseException | None, types: tuple[type[BaseException], ...]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, types):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False
