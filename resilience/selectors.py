"""Reads about the health of the app's dependencies."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection

from resilience.connection import get_redis, redacted_url
from resilience.exceptions import REDIS_WRITE_REFUSED_ERRORS, ClusterNotConfigured
from resilience.health.cluster import cluster_configured, cluster_state_reason, not_configured_reason
from resilience.health.writes import refusal_reason, write_refusal

logger = logging.getLogger(__name__)

# /readyz is polled by every load balancer and orchestrator: one write probe per process
# per interval answers them all.
WRITE_PROBE_INTERVAL = 5.0


@dataclass(frozen=True)
class CheckResult:
    """The outcome of probing one dependency."""

    name: str
    ok: bool
    ms: float
    detail: dict = field(default_factory=dict)
    # The exception class only: driver messages carry hosts, ports and database names.
    error: str = ""
    # Answers, but cannot do everything the app needs (Redis refusing writes): reason says why.
    degraded: bool = False
    reason: str = ""

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = "degraded" if self.degraded else "ok" if self.ok else "fail"
        for name in ("error", "reason", "degraded"):
            if not data[name]:
                del data[name]
        return data


def _timed(name: str, probe) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = probe() or {}
    except Exception as exc:  # any failure of a dependency is a failed check, not a 500
        logger.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
        return CheckResult(name, False, _ms(started), error=error_name(exc))
    return CheckResult(name, True, _ms(started), detail=detail)


def error_name(exc: BaseException) -> str:
    """Return the exception's class, plus a TLS verification failure's code and kind (never an address)."""
    name = type(exc).__name__
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 5:
        if isinstance(cause, ssl.SSLError) and cause.reason:
            # e.g. "IP address mismatch, certificate is not valid for '10.0.0.5'": keep the kind only.
            kind = str(getattr(cause, "verify_message", "") or "").split(",")[0]
            return f"{name} ({cause.reason}{': ' + kind if kind else ''})"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return name


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


_probe_lock = threading.Lock()
_last_probe: dict = {"at": None, "refusal": None, "topology": (None, None)}


def write_probe_forget() -> None:
    """Forget this process's last write probe, so the next check writes again (tests use it)."""
    with _probe_lock:
        _last_probe.update(at=None, refusal=None, topology=(None, None))


def _write_refusal(client) -> tuple[BaseException | None, tuple[str | None, str | None]]:
    """Return the write probe's refusal and the topology check, both refreshed once per interval."""
    now = time.monotonic()
    with _probe_lock:
        at = _last_probe["at"]
        if at is not None and now - at < WRITE_PROBE_INTERVAL:
            return _last_probe["refusal"], _last_probe["topology"]
    topology = _topology(client)
    refusal = None if topology[0] else write_refusal(client.execute_command)
    with _probe_lock:
        _last_probe.update(at=now, refusal=refusal, topology=topology)
    return refusal, topology


def _topology(client) -> tuple[str | None, str | None]:
    """Return (why the app must not use this Redis, why the cluster serves only part of its slots)."""
    if cluster_configured():
        return None, cluster_state_reason(client)
    return not_configured_reason(client.info("cluster"), redacted_url(settings.RESILIENCE_REDIS_URL)), None


def redis_check() -> CheckResult:
    """PING Redis and check that it accepts writes (reports 'disabled' when REDIS_ENABLE=false)."""
    if not settings.RESILIENCE_REDIS_ENABLED:
        return CheckResult("redis", True, 0.0, detail={"mode": "disabled (REDIS_ENABLE=false)"})
    started = time.perf_counter()

    def probe() -> dict:
        client = get_redis()
        try:
            client.ping()
        except REDIS_WRITE_REFUSED_ERRORS as exc:
            # MISCONF refuses even PING; the server answered, so it is a refusal, not an outage.
            return {"pong": True, "refusal": exc}
        refusal, topology = _write_refusal(client)
        return {"pong": True, "refusal": refusal, "topology": topology}

    result = _timed("redis", probe)
    refusal = result.detail.pop("refusal", None)
    misconfigured, partial = result.detail.pop("topology", None) or (None, None)
    if misconfigured:
        logger.error("readiness: %s", misconfigured)
        return CheckResult(
            "redis",
            False,
            _ms(started),
            detail=result.detail,
            error=ClusterNotConfigured.__name__,
            reason=misconfigured,
        )
    if refusal is None and partial is None:
        return result
    reason = refusal_reason(refusal) if refusal is not None else partial
    logger.warning("readiness: %s", reason)
    return CheckResult(
        "redis",
        True,
        _ms(started),
        detail=result.detail,
        error=type(refusal).__name__ if refusal is not None else "ClusterStateNotOk",
        degraded=True,
        reason=reason or "",
    )


def readiness() -> list[CheckResult]:
    """Return the result of every check /readyz reports."""
    return [database_check(), redis_check()]
