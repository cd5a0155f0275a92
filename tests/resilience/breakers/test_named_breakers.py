"""Named breakers on pybreaker with Redis storage: thresholds, timeouts, sharing, isolation, history."""

from __future__ import annotations

import contextlib
import multiprocessing
import time

import pytest
from django.test import override_settings
from pybreaker import CircuitBreakerError

from resilience.breakers import breaker, registered_breakers, storage_degraded
from resilience.breakers.registry import forget_breakers
from resilience.breakers.selectors import breaker_events, breakers_snapshot


class Boom(Exception):
    pass


class Upstream:
    """A guarded operation that counts how often it really runs."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    def __call__(self):
        self.calls += 1
        if self.failing:
            raise Boom("down")
        return "ok"


def _fail(cb, op, times):
    for _ in range(times):
        with pytest.raises((Boom, CircuitBreakerError)):
            cb.call(op)


def test_opens_after_fail_max_and_fails_fast_while_open():
    cb = breaker("svc.a", fail_max=3, reset_timeout=60, success_threshold=2)
    op = Upstream()
    _fail(cb, op, 2)
    assert cb.current_state == "closed" and cb.fail_counter == 2
    with pytest.raises(CircuitBreakerError):
        cb.call(op)  # the third failure trips it
    assert cb.current_state == "open"
    for _ in range(5):
        with pytest.raises(CircuitBreakerError):
            cb.call(op)
    assert op.calls == 3  # nothing reached the operation while open


def test_half_open_after_the_timeout_then_closed_after_success_threshold():
    cb = breaker("svc.b", fail_max=1, reset_timeout=0.3, success_threshold=2)
    op = Upstream()
    _fail(cb, op, 1)
    assert cb.current_state == "open"
    time.sleep(0.35)
    op.failing = False
    assert cb.call(op) == "ok"
    assert cb.current_state == "half-open" and cb.success_counter == 1
    assert cb.call(op) == "ok"
    assert cb.current_state == "closed"


def test_a_failure_while_half_open_reopens():
    cb = breaker("svc.c", fail_max=1, reset_timeout=0.2, success_threshold=2)
    op = Upstream()
    _fail(cb, op, 1)
    time.sleep(0.25)
    with pytest.raises(CircuitBreakerError):
        cb.call(op)
    assert cb.current_state == "open"


def test_two_breakers_never_share_state(redis_client):
    a = breaker("svc.one", fail_max=1)
    b = breaker("svc.two", fail_max=1)
    _fail(a, Upstream(), 1)
    assert a.current_state == "open" and b.current_state == "closed"
    assert redis_client.get("agentapi:cb:svc.one:pybreaker:state") == "open"
    assert redis_client.get("agentapi:cb:svc.two:pybreaker:state") == "closed"


def _trip_in_child(name: str, queue) -> None:
    forget_breakers()  # a fresh process: no breaker objects, only Redis
    cb = breaker(name, fail_max=2, reset_timeout=60)
    for _ in range(2):
        with contextlib.suppress(Boom, CircuitBreakerError):
            cb.call(Upstream())
    queue.put(cb.current_state)


def _observe_in_child(name: str, queue) -> None:
    forget_breakers()
    cb = breaker(name, fail_max=2, reset_timeout=60)
    try:
        cb.call(lambda: "never runs")
        queue.put("ran")
    except CircuitBreakerError:
        queue.put("refused")


def test_state_is_shared_between_processes():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_trip_in_child, args=("svc.shared", queue))
    child.start()
    assert queue.get(timeout=30) == "open"
    child.join(timeout=10)
    cb = breaker("svc.shared", fail_max=2, reset_timeout=60)
    assert cb.current_state == "open"
    with pytest.raises(CircuitBreakerError):
        cb.call(lambda: "never runs")


def test_transitions_are_recorded_once_however_many_processes_notice():
    cb = breaker("svc.events", fail_max=1, reset_timeout=60)
    cb.state  # noqa: B018 - this process has seen it closed
    _fail(cb, Upstream(), 1)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    for _ in range(2):  # two other processes notice the opening too
        child = context.Process(target=_observe_in_child, args=("svc.events", queue))
        child.start()
        assert queue.get(timeout=30) == "refused"
        child.join(timeout=10)
    events = breaker_events("svc.events")
    assert [(e.old, e.new) for e in events] == [("closed", "open")]
    assert events[0].by


def test_config_comes_from_settings_with_overrides():
    with override_settings(
        RESILIENCE_BREAKER_FAILURE_THRESHOLD=7,
        RESILIENCE_BREAKER_TIMEOUT=11.0,
        RESILIENCE_BREAKER_SUCCESS_THRESHOLD=4,
        RESILIENCE_BREAKER_OVERRIDES={"upstream.*": {"fail_max": 2}, "upstream.acme": {"reset_timeout": 3.0}},
    ):
        plain = breaker("svc.plain")
        acme = breaker("upstream.acme")
        coded = breaker("upstream.other", fail_max=9)
    assert (plain.fail_max, plain.reset_timeout, plain.success_threshold) == (7, 11.0, 4)
    assert (acme.fail_max, acme.reset_timeout) == (2, 3.0)
    assert coded.fail_max == 9


def test_bad_names_are_refused():
    for name in ("Bad Name", "events", "redis", "a:b"):
        with pytest.raises(ValueError, match="invalid"):
            breaker(name)


@override_settings(RESILIENCE_BREAKER_ENABLED=False)
def test_circuit_breaker_enabled_false_bypasses_breakers():
    cb = breaker("svc.off", fail_max=1)
    op = Upstream()
    for _ in range(5):
        with pytest.raises(Boom):
            cb.call(op)
    assert op.calls == 5 and cb.current_state == "closed"


def test_snapshot_lists_breakers_of_every_process_with_config(redis_client):
    cb = breaker("svc.snap", fail_max=2, reset_timeout=30, success_threshold=3)
    _fail(cb, Upstream(), 2)
    forget_breakers()  # as another process would: only Redis knows the breaker
    assert "svc.snap" in registered_breakers()
    snapshot = {state.name: state for state in breakers_snapshot()}
    assert snapshot["redis"].storage == "process"
    snap = snapshot["svc.snap"]
    assert (snap.state, snap.fail_max, snap.success_threshold, snap.reset_timeout) == ("open", 2, 3, 30)
    assert snap.opened_at is not None and snap.half_open_after is not None
    assert (snap.half_open_after - snap.opened_at).total_seconds() == 30
    assert snap.recent[0].new == "open"
    assert redis_client.hgetall("agentapi:cb:svc.snap:config") == {
        "fail_max": "2",
        "reset_timeout": "30",
        "success_threshold": "3",
        "code_overrides": '{"fail_max": 2, "reset_timeout": 30, "success_threshold": 3}',
    }


def test_storage_degrades_to_memory_while_redis_is_down_and_comes_back(redis_server):
    cb = breaker("svc.degrade", fail_max=2, reset_timeout=60)
    assert not storage_degraded()
    redis_server.kill()
    op = Upstream()
    _fail(cb, op, 2)  # the breaker keeps working from process memory
    assert cb.current_state == "open"
    assert storage_degraded()
    redis_server.start()
    from resilience.breakers.process import redis_breaker

    redis_breaker.reset()  # the Redis breaker's own recovery is tested elsewhere
    cb.state  # noqa: B018 - next storage access reaches Redis again
    assert not storage_degraded()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("redis:fail_max=3,reset_timeout=5s", {"redis": {"fail_max": 3, "reset_timeout": 5.0}}),
        (
            "upstream.*:success_threshold=4; svc:reset_timeout=500ms",
            {"upstream.*": {"success_threshold": 4}, "svc": {"reset_timeout": 0.5}},
        ),
    ],
)
def test_breaker_overrides_setting_is_parsed(load_settings, value, expected):
    loaded, error = load_settings(["RESILIENCE_BREAKER_OVERRIDES"], CIRCUIT_BREAKER_OVERRIDES=value, DEBUG="true")
    assert loaded is not None, error
    assert loaded["RESILIENCE_BREAKER_OVERRIDES"] == expected


@pytest.mark.parametrize("value", ["redis", "redis:fail_max=0", "redis:nope=1", "redis:reset_timeout=soon"])
def test_bad_breaker_overrides_name_the_variable(load_settings, value):
    loaded, error = load_settings(["DEBUG"], CIRCUIT_BREAKER_OVERRIDES=value, DEBUG="true")
    assert loaded is None and "CIRCUIT_BREAKER_OVERRIDES" in error


def test_redis_breaker_reads_its_overrides(settings):
    from resilience.breakers.process import redis_breaker

    settings.RESILIENCE_BREAKER_OVERRIDES = {"redis": {"fail_max": 9, "reset_timeout": 2.5}}
    assert (redis_breaker.fail_max, redis_breaker.reset_timeout) == (9, 2.5)


def test_the_package_exports_the_interface_other_branches_use():
    import resilience.breakers as breakers
    from resilience.breakers import breaker_events as events
    from resilience.breakers import breakers_snapshot as snapshot
    from tenants.upstream import upstream_check as check

    assert callable(events) and callable(snapshot) and callable(check)
    assert breakers.redis_breaker.name == "redis" and breakers.storage_degraded() is False
    with pytest.raises(AttributeError):
        breakers.nothing_here  # noqa: B018


def test_the_events_stream_is_capped(redis_client):
    from resilience.breakers.events import EVENTS_MAXLEN, events_key, record_transition

    for n in range(EVENTS_MAXLEN + 300):
        record_transition("svc.cap", "closed", "open", token=f"t{n}")
    # MAXLEN ~ trims whole stream nodes (100 entries each by default), never below the cap.
    assert EVENTS_MAXLEN <= redis_client.xlen(events_key()) <= EVENTS_MAXLEN + 100
    assert record_transition("svc.cap", "closed", "open", token="t5") is None  # already recorded
