"""Named circuit breakers on pybreaker, their state shared through Redis, one namespace each."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import threading

from django.conf import settings
from pybreaker import STATE_CLOSED, CircuitBreaker, CircuitBreakerError, CircuitMemoryStorage

from resilience.breakers.events import TransitionRecorder
from resilience.breakers.keys import config_key, namespace, registry_key, storage_keys
from resilience.breakers.process import redis_breaker
from resilience.breakers.storage import ResilientRedisStorage
from resilience.connection import decoded, get_redis
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, RedisDisabled

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
RESERVED_NAMES = {"events", "index", "redis"}
OPTIONS = ("fail_max", "reset_timeout", "success_threshold")


class NamedBreaker(CircuitBreaker):
    """A pybreaker breaker with a name, its config stored for the ops pages, and operator pins."""

    def __init__(self, name: str, *, fail_max: int, reset_timeout: float, success_threshold: int, storage) -> None:
        super().__init__(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
            state_storage=storage,
            listeners=[TransitionRecorder()],
            name=name,
        )
        self._transition_reason = ""

    @property
    def storage(self):
        return self._state_storage

    @property
    def forced(self) -> str:
        return getattr(self._state_storage, "forced", "")

    def call(self, func, *args, **kwargs):
        """Run func through the breaker (straight through when CIRCUIT_BREAKER_ENABLED=false or pinned closed)."""
        if not settings.RESILIENCE_BREAKER_ENABLED:
            return func(*args, **kwargs)
        forced = self.forced
        if forced == "open":
            raise CircuitBreakerError(f"Circuit breaker {self.name!r} was forced open by an operator")
        if forced == "closed":
            return func(*args, **kwargs)
        return super().call(func, *args, **kwargs)


_lock = threading.Lock()
_breakers: dict[str, NamedBreaker] = {}


def _config(name: str, overrides: dict) -> dict:
    config = {
        "fail_max": settings.RESILIENCE_BREAKER_FAILURE_THRESHOLD,
        "reset_timeout": settings.RESILIENCE_BREAKER_TIMEOUT,
        "success_threshold": settings.RESILIENCE_BREAKER_SUCCESS_THRESHOLD,
    }
    # CIRCUIT_BREAKER_OVERRIDES entries match a name exactly or as a glob (upstream.*);
    # exact names win over globs, code-level overrides over both.
    configured = getattr(settings, "RESILIENCE_BREAKER_OVERRIDES", {})
    for pattern, values in sorted(configured.items(), key=lambda item: item[0] == name):
        if pattern == name or fnmatch.fnmatchcase(name, pattern):
            config.update(values)
    config.update({option: value for option, value in overrides.items() if value is not None})
    return config


def _storage(name: str):
    try:
        client = get_redis()
    except RedisDisabled:
        return CircuitMemoryStorage(STATE_CLOSED)
    return ResilientRedisStorage(STATE_CLOSED, client, namespace=namespace(name))


def breaker(name: str, *, fail_max: int | None = None, reset_timeout: float | None = None, success_threshold=None):
    """Return the process's breaker called `name`, creating it (and announcing it in Redis) on first use.

    Overrides given in code are stored with the breaker, so a process that only looks
    at it (the ops pages, another worker) builds it with the same thresholds.
    """
    existing = _breakers.get(name)
    if existing is not None:
        return existing
    if not NAME_PATTERN.match(name) or name in RESERVED_NAMES:
        raise ValueError(
            f"Breaker name {name!r} is invalid: use 1-100 of a-z, 0-9, '_', '.', '-' (not {sorted(RESERVED_NAMES)})"
        )
    given = (("fail_max", fail_max), ("reset_timeout", reset_timeout), ("success_threshold", success_threshold))
    overrides = {option: value for option, value in given if value is not None}
    with _lock:
        if name not in _breakers:
            if not overrides:
                overrides = _stored_overrides(name)
            config = _config(name, overrides)
            created = NamedBreaker(name, storage=_storage(name), **config)
            _announce(name, config, overrides)
            _breakers[name] = created
    return _breakers[name]


def _stored_overrides(name: str) -> dict:
    try:
        raw = get_redis().hget(config_key(name), "code_overrides")
    except REDIS_UNAVAILABLE_ERRORS:
        return {}
    try:
        stored = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {option: value for option, value in stored.items() if option in OPTIONS}


def _announce(name: str, config: dict, overrides: dict) -> None:
    # So the ops pages of every process list breakers created anywhere, with their config.
    mapping = {option: str(value) for option, value in config.items()}
    mapping["code_overrides"] = json.dumps(overrides, sort_keys=True)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.sadd(registry_key(), name)
        pipe.hset(config_key(name), mapping=mapping)
        pipe.execute()
    except REDIS_UNAVAILABLE_ERRORS:
        pass  # the storage reports degraded; the next process start announces it again


def registered_breakers() -> list[str]:
    """Return the names of breakers known to this process or announced by any process."""
    names = set(_breakers)
    with contextlib.suppress(*REDIS_UNAVAILABLE_ERRORS):
        names.update(decoded(member) for member in get_redis().smembers(registry_key()))
    return sorted(names)


def storage_degraded() -> bool:
    """Return True while breaker state cannot be shared through Redis (it is kept in process memory)."""
    if redis_breaker.state != "closed":
        return True
    return any(getattr(b.storage, "degraded", False) for b in _breakers.values())


STORAGE_FIELDS = ("state", "fail_counter", "success_counter", "opened_at", "forced")


def breaker_retire(name: str) -> None:
    """Forget a breaker whose guarded target is gone: its shared state, config and index entry (best-effort)."""
    with _lock:
        _breakers.pop(name, None)
    keys = [config_key(name), *storage_keys(name, STORAGE_FIELDS)]
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.delete(*keys)
        pipe.srem(registry_key(), name)
        pipe.execute()
    except REDIS_UNAVAILABLE_ERRORS:
        pass  # left behind: the breakers page lists it until an operator deletes the keys


def forget_breakers() -> None:
    """Drop this process's breaker objects (tests; shared state in Redis is untouched)."""
    with _lock:
        _breakers.clear()
