"""Prometheus metrics: every family the app exports, the one-line recorders apps call, and `GET /metrics`.

Families and labels are documented in docs/observability.md. Labels are bounded:
route patterns (never paths), fixed outcome / scope / kind vocabularies, breaker
names from the registry. Under gunicorn the client's multiprocess mode is on
(`PROMETHEUS_MULTIPROC_DIR`, prepared by gunicorn.conf.py), so a scrape answered by
any worker reports the sum over all of them.

Higher apps add what can only be read at scrape time (Redis server gauges, breaker
states kept in Redis, maintenance lag) with `register_scrape_collector()`; this
module imports nothing of theirs.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Literal

import redis
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from agentapi_admin import logformat

logger = logging.getLogger(__name__)

# prometheus-client's own variable, read by the client itself when it is imported (before
# settings exist), so it is read here the same way rather than through settings.py.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

BREAKER_STATES = ("closed", "open", "half-open")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "agentapi_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "agentapi_http_request_duration_seconds",
    "Time from the first middleware to the response, by route pattern and method.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GATEWAY = Counter("agentapi_gateway_requests", "Service-API gate decisions, by outcome.", ["outcome"])
GATEWAY_COLD_FILLS = Counter(
    "agentapi_gateway_cold_fills", "Service-API requests that rebuilt an API-key entry from the database."
)
LIMITER = Counter("agentapi_ratelimit_decisions", "Rate-limiter decisions, by scope and result.", ["scope", "result"])
FORM_THROTTLE = Counter(
    "agentapi_form_throttle_refusals", "Form submissions refused by the form throttle.", ["group", "reason"]
)
BREAKER_STATE = Gauge(
    "agentapi_breaker_state",
    "1 for the breaker's current state (closed, open, half-open), 0 for the others.",
    ["breaker", "state"],
    multiprocess_mode="mostrecent",
)
BREAKER_TRANSITIONS = Counter(
    "agentapi_breaker_transitions", "Breaker state changes noticed by this process.", ["breaker", "to"]
)
WEBHOOK_DELIVERIES = Counter(
    "agentapi_webhook_deliveries",
    "Webhook delivery attempts by outcome (held_by_breaker: not sent, the endpoint's breaker is open).",
    ["outcome"],
)
REDIS_ERRORS = Counter("agentapi_redis_errors", "Redis commands that failed in the app's clients, by kind.", ["kind"])
SESSION_FAILURES = Counter(
    "agentapi_session_store_failures", "Requests the session store failed, by operation.", ["operation"]
)

TENANT_SLUG_CACHE = 10_000
_tenant_slugs: dict[str, str] = {}
_http_children: dict[tuple, tuple] = {}
_children: dict[tuple, object] = {}
_scrape_collectors: list = []
_denial_listeners: list[Callable[[str], None]] = []
_scrape_hooks: list[Callable[[], None]] = []


def _child(metric, *labels):
    """Return metric.labels(*labels), cached: .labels() takes a lock and builds a key on every call."""
    found = _children.get((metric, labels))
    if found is None:
        found = _children[(metric, labels)] = metric.labels(*labels)
    return found


# --------------------------------------------------------------------- recorders
def http_observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    if not settings.METRICS_ENABLED:
        return
    method = method if method in HTTP_METHODS else "other"
    children = _http_children.get((route, method, status))
    if children is None:  # .labels() takes a lock and hashes: once per label set, not per request
        children = (HTTP_REQUESTS.labels(route, method, str(status)), HTTP_DURATION.labels(route, method))
        _http_children[(route, method, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def gateway_observe(result):
    """Count a GatewayResult's outcome, name its tenant in the request's logs, and return it."""
    tenant_id, outcome = result.tenant_id, result.outcome
    if tenant_id:
        logformat.bind_tenant(slug=_tenant_slugs.get(tenant_id, ""), tenant_id=tenant_id)
    # The gate's IP check refuses before the key is known, so only a tenant refusal names a tenant.
    scope = ("tenant" if tenant_id else "ip") if outcome == "limited" else "quota" if outcome == "quota" else ""
    if scope:
        _denied(scope)
    if not settings.METRICS_ENABLED:
        return result
    _child(GATEWAY, "not_modified" if result.not_modified else outcome).inc()
    if outcome == "limited":
        _child(LIMITER, scope, "limited").inc()
    elif outcome == "ok" and result.decision is not None:
        _child(LIMITER, "tenant", "allowed").inc()
    return result


def tenant_seen(tenant_id: str, slug: str) -> None:
    """Remember a tenant's slug (learnt on a cold fill) so warm requests can log it without a query."""
    if len(_tenant_slugs) < TENANT_SLUG_CACHE:
        _tenant_slugs[str(tenant_id)] = slug


def gateway_cold_fill() -> None:
    if settings.METRICS_ENABLED:
        GATEWAY_COLD_FILLS.inc()


def limiter_decisions(scopes: list[str], decisions: list) -> None:
    """Count the limiter's Decisions for the given scopes (same order)."""
    for scope, decision in zip(scopes, decisions, strict=False):
        if not decision.allowed:
            _denied(scope)
        if not settings.METRICS_ENABLED:
            continue
        if decision.degraded:
            result = "fail_open" if decision.allowed else "fail_closed"
        else:
            result = "allowed" if decision.allowed else "limited"
        _child(LIMITER, scope, result).inc()


def limiter_degraded(scope: str, *, enabled: bool) -> None:
    """Count a decision RATE_LIMIT_FAIL_MODE made because Redis could not be asked."""
    if settings.METRICS_ENABLED and enabled:
        _child(LIMITER, scope, f"fail_{settings.RESILIENCE_RATE_LIMIT_FAIL_MODE}").inc()


def form_throttle_refusal(group: str, result) -> None:
    """Count one refused form submission: by ip, by username, or unavailable (store down, fail closed)."""
    _denied("form")
    if settings.METRICS_ENABLED:
        reason = "unavailable" if result.unavailable else "username" if result.by_username else "ip"
        _child(FORM_THROTTLE, group, reason).inc()


def webhook_delivery(outcome: str) -> None:
    """Count one webhook delivery turn: delivered, retrying, failed or held_by_breaker."""
    if settings.METRICS_ENABLED:
        _child(WEBHOOK_DELIVERIES, outcome).inc()


def breaker_state(name: str, state: str) -> None:
    """Set the one-hot state gauge of a breaker."""
    if not settings.METRICS_ENABLED:
        return
    for each in BREAKER_STATES:
        _child(BREAKER_STATE, name, each).set(1 if each == state else 0)


def breaker_transition(name: str, new: str) -> None:
    """Count one state change and set the state gauge."""
    if not settings.METRICS_ENABLED:
        return
    _child(BREAKER_TRANSITIONS, name, new).inc()
    breaker_state(name, new)


class _RedisErrorCounter:
    """Context manager counting the Redis error leaving it (a class: cheaper than @contextmanager per command)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        # NoScriptError is expected once per script and server: EVAL follows.
        if (
            exc is not None
            and settings.METRICS_ENABLED
            and isinstance(exc, redis.exceptions.RedisError)
            and not isinstance(exc, redis.exceptions.NoScriptError)
        ):
            _child(REDIS_ERRORS, redis_error_kind(exc)).inc()
        return False


_redis_error_counter = _RedisErrorCounter()


def counting_redis_errors() -> _RedisErrorCounter:
    """Return a context manager that counts a Redis error raised inside it by kind, then lets it propagate."""
    return _redis_error_counter


def redis_error_kind(exc: BaseException) -> str:
    """Return the bounded kind label of a Redis client error."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    for name, kind in (
        ("RedisUnavailable", "breaker_open"),
        ("TimeoutError", "timeout"),
        ("OutOfMemoryError", "oom"),
        ("ReadOnlyError", "readonly"),
        ("AuthenticationError", "auth"),
        ("ConnectionError", "connection"),
        ("ResponseError", "response"),
    ):
        if name in names:
            return kind
    return "other"


def session_store_failure(operation: str) -> None:
    if settings.METRICS_ENABLED:
        _child(SESSION_FAILURES, operation).inc()


def register_denial_listener(listener: Callable[[str], None]) -> None:
    """Call `listener(scope)` on every refusal (429 or fail-closed 503), metrics on or off."""
    if listener not in _denial_listeners:
        _denial_listeners.append(listener)


def _denied(scope: str) -> None:
    for listener in _denial_listeners:
        try:
            listener(scope)
        except Exception:  # history is advisory: a listener must never fail the request
            logger.debug("denial listener failed", exc_info=True)


# ------------------------------------------------------------------- exposition
def register_scrape_collector(collector) -> None:
    """Add a collector read at scrape time (it must yield families no recorder above defines)."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def register_scrape_hook(hook: Callable[[], None]) -> None:
    """Run `hook` before each scrape, e.g. to refresh a gauge from shared state."""
    if hook not in _scrape_hooks:
        _scrape_hooks.append(hook)


_scrape_lock = threading.Lock()


def exposition() -> bytes:
    """Return every family in the Prometheus text format (summed over workers in multiprocess mode)."""
    with _scrape_lock:
        for hook in _scrape_hooks:
            try:
                hook()
            except Exception:  # a scrape must still answer when one source fails
                logger.exception("metrics scrape hook %s failed", getattr(hook, "__name__", hook))
        if MULTIPROC_DIR:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        else:
            registry = CollectorRegistry()
            registry.register(_Delegate(REGISTRY))
        for collector in _scrape_collectors:
            registry.register(collector)
        return generate_latest(registry)


class _Delegate:
    """Expose the default registry's families inside a per-scrape registry."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def collect(self):
        return self.registry.collect()

    def describe(self):
        return []


def metrics_access(request) -> str | None:
    """Return None when the scraper may read /metrics, else why not."""
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return None
        return "wrong bearer token"
    # The direct peer, never X-Forwarded-For: a request through the public proxy must not pass as internal.
    peer = request.META.get("REMOTE_ADDR", "")
    if settings.METRICS_ALLOWED_CIDRS and peer:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return "unparseable peer address"
        if any(address in network for network in settings.METRICS_ALLOWED_CIDRS):
            return None
    if not token and not settings.METRICS_ALLOWED_CIDRS:
        return "set METRICS_TOKEN or METRICS_ALLOWED_CIDRS to allow scraping"
    return "send Authorization: Bearer $METRICS_TOKEN or scrape from METRICS_ALLOWED_CIDRS"


@never_cache
def metrics_view(request):
    """Answer the Prometheus text format to an authorised scraper; 403 JSON naming the remedy otherwise."""
    if not settings.METRICS_ENABLED:
        return JsonResponse({"error": "metrics_disabled", "detail": "METRICS_ENABLED=false."}, status=404)
    refused = metrics_access(request)
    if refused is not None:
        return JsonResponse({"error": "forbidden", "detail": refused}, status=403)
    started = time.perf_counter()
    body = exposition()
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["X-Scrape-Seconds"] = f"{time.perf_counter() - started:.4f}"
    return response
