"""Reads about the health of the app's dependencies."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection

from resilience.connection import get_redis


@dataclass(frozen=True)
class CheckResult:
    """The outcome of probing one dependency."""

    name: str
    ok: bool
    ms: float
    detail: dict = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = "ok" if self.ok else "fail"
        if not self.error:
            del data["error"]
        return data


def _timed(name: str, probe) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = probe() or {}
    except Exception as exc:  # any failure of a dependency is a failed check, not a 500
        return CheckResult(name, False, _ms(started), error=f"{type(exc).__name__}: {exc}")
    return CheckResult(name, True, _ms(started), detail=detail)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def database_check() -> CheckResult:
    """Run `SELECT 1` on the default database."""

    def probe() -> dict:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"vendor": connection.vendor}

    return _timed("database", probe)


def redis_check() -> CheckResult:
    """PING the Redis server behind the cache (reports 'disabled' when REDIS_ENABLE=false)."""
    if not settings.RESILIENCE_REDIS_ENABLED:
        return CheckResult("redis", True, 0.0, detail={"mode": "disabled (REDIS_ENABLE=false)"})
    return _timed("redis", lambda: {"pong": bool(get_redis().ping())})


def readiness() -> list[CheckResult]:
    """Return the result of every check /readyz reports."""
    return [database_check(), redis_check()]
