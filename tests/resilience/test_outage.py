"""Kill Redis during a run of requests against a limited route: no 500s, fail mode honoured, fail fast, recovery."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from resilience.breakers.process import redis_breaker

pytestmark = pytest.mark.urls("tests.resilience.ratelimit.urls")

FAIL_MAX = 3


def _run(client, n):
    return [client.get("/api/ping", REMOTE_ADDR="10.7.7.7") for _ in range(n)]


@pytest.mark.parametrize(("mode", "status_while_down"), [("open", 200), ("closed", 503)])
def test_redis_outage_during_a_run_of_limited_requests(client, redis_server, mode, status_while_down):
    redis_breaker.configure(fail_max=FAIL_MAX, reset_timeout=0.5, success_threshold=2)
    with override_settings(
        RESILIENCE_RATE_LIMIT_FAIL_MODE=mode, RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=4
    ):
        before = _run(client, 5)
        assert [r.status_code for r in before] == [200] * 5
        assert before[-1]["RateLimit-Remaining"] == "0"
        assert _run(client, 1)[0].status_code == 429  # the limiter is really enforcing

        redis_server.kill()
        attempts_before = redis_breaker.attempts
        outage_began = time.time()
        during = _run(client, 40)
        assert {r.status_code for r in during} == {status_while_down}  # never a 500
        if mode == "closed":
            assert during[-1].json()["error"] == "rate_limiter_unavailable"
            assert during[-1]["Retry-After"]
        else:
            assert "RateLimit-Remaining" not in during[-1]  # no invented counts
        # Only the requests that tripped the breaker went to the network, plus one trial each time the
        # reset timeout passed during the run (a loaded machine can take longer than 0.5 s for 40
        # requests); the others failed fast.
        trials = sum(t.new == "half-open" for t in redis_breaker.transitions if t.at >= outage_began)
        assert redis_breaker.state == "open"
        assert redis_breaker.attempts - attempts_before == FAIL_MAX + trials
        assert redis_breaker.rejected == 40 - FAIL_MAX - trials

        redis_server.start()
        time.sleep(0.55)  # the breaker's reset timeout: the next request is a trial
        after = _run(client, 7)
        assert [r.status_code for r in after] == [200] * 5 + [429] * 2  # enforcing again, same app
        assert redis_breaker.state == "closed"
        assert after[0]["RateLimit-Limit"] == "60"
        assert [t.new for t in redis_breaker.transitions][:3] == ["closed", "half-open", "open"]


def test_a_hung_redis_costs_timeouts_only_until_the_breaker_opens(client, redis_server):
    """SIGSTOP leaves connections open but silent: the worst case, each command waits for its timeout."""
    import signal

    redis_breaker.configure(fail_max=2, reset_timeout=60)
    with override_settings(RESILIENCE_RATE_LIMIT_FAIL_MODE="open"):
        assert _run(client, 1)[0].status_code == 200  # a pooled connection exists
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            answers = _run(client, 20)
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
    assert {a.status_code for a in answers} == {200}
    assert redis_breaker.state == "open"
    assert redis_breaker.rejected == 18  # 18 of 20 never waited for a socket timeout
