"""Measure one limiter decision against a raw `EVALSHA return 1` and django-ratelimit, same Redis, same run.

    .venv/bin/python -m bench.ratelimit.run [--ops 20000] [--rounds 3]

Starts its own redis-server on a free port. Each round times, interleaved in
shuffled batches of 200 (so a busy machine slows every case alike), on the
same connection pool: a raw `EVALSHA "return 1"` round trip, `RateLimiter.hit()`
(the app's decision: keys, args, EVALSHA of the GCRA script, Decision), and
django-ratelimit's `get_usage(increment=True)` (its 2-4 cache commands); then a bare
Django JSON view through the in-process WSGI handler, served plain and under the
rate-limit middleware. Prints JSON: median µs per operation over the rounds, the
ratios, and Redis commands per decision from the INFO commandstats delta.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisProcess  # noqa: E402


def configure(redis_url: str) -> None:
    os.environ.update(
        {
            "READ_ENV_FILE": "false",
            "DJANGO_SETTINGS_MODULE": "bench.ratelimit.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 60,
            "TOKEN_ENCRYPTION_KEY": "ab" * 32,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": "sqlite:///:memory:",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            # Every request is admitted, so the bench measures the decision, not 429 pages.
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
            "RATE_LIMIT_BURST_SIZE": "1000000",
        }
    )
    import django

    django.setup()


def measure(cases: dict, ops: int, batch: int, http_share: int) -> dict[str, float]:
    """Return µs per operation of each case, timed in interleaved batches so load drift hits all alike."""
    for fn in cases.values():  # warm the pool, the script cache and the code paths
        for i in range(200):
            fn(i)
    spent = dict.fromkeys(cases, 0.0)
    done = dict.fromkeys(cases, 0)
    order = list(cases)
    for round_number in range(max(1, ops // batch)):
        random.Random(round_number).shuffle(order)
        for name in order:
            size = batch // http_share if name.startswith("http") else batch
            fn = cases[name]
            started = time.perf_counter()
            for i in range(size):
                fn(i)
            spent[name] += time.perf_counter() - started
            done[name] += size
    return {name: spent[name] / done[name] * 1e6 for name in cases}


def commandstats(client) -> dict[str, int]:
    return {name: int(stats["calls"]) for name, stats in client.info("commandstats").items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    server = RedisProcess().start()
    try:
        configure(server.url)
        from django.test import Client, RequestFactory
        from django_ratelimit.core import get_usage

        from resilience.connection import get_redis
        from resilience.ratelimit import RateLimiter

        client = get_redis()  # the app's pooled client (hiredis parser, Redis breaker)
        raw_sha = client.script_load("return 1")
        limiter = RateLimiter()
        identities = [f"10.0.{n // 256}.{n % 256}" for n in range(1000)]  # a realistic index, not one hot key
        factory_request = RequestFactory().post("/login/")
        http = Client()

        cases = {
            "raw_evalsha_return_1": lambda i: client.evalsha(raw_sha, 0),
            "limiter_hit": lambda i: limiter.hit("ip", "acme", identities[i % 1000], limit=1_000_000, burst=1_000_000),
            "django_ratelimit_get_usage": lambda i: get_usage(
                factory_request,
                group="bench",
                key=lambda _g, _r, ident=identities[i % 1000]: ident,
                rate="1000000/m",
                method=["POST"],
                increment=True,
            ),
            "http_bare_view": lambda i: http.get("/bench/bare"),
            "http_bare_view_rate_limited": lambda i: http.get("/api/bench/bare", REMOTE_ADDR=identities[i % 1000]),
        }
        assert http.get("/api/bench/bare").has_header("RateLimit-Limit"), "the middleware is not limiting /api/"
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.rounds):
            for name, value in measure(cases, options.ops, batch=200, http_share=4).items():
                results[name].append(value)

        plain = get_redis().__class__.__mro__[1](port=server.port)  # redis.Redis, no breaker wrapper
        before = commandstats(plain)
        # Each identity seen twice: django-ratelimit's first hit is one SET NX, later ones GET-free INCR paths.
        for i in range(2000):
            limiter.hit("ip", "acme", identities[i % 1000], limit=1_000_000, burst=1_000_000)
        middle = commandstats(plain)
        for i in range(2000):
            get_usage(
                factory_request, group="bench2", key=lambda _g, _r, ident=identities[i % 1000]: ident,
                rate="1000000/m", method=["POST"], increment=True,
            )  # fmt: skip
        after = commandstats(plain)

        def per_call(a, b):
            return {
                k.removeprefix("cmdstat_"): (b[k] - a.get(k, 0)) / 2000
                for k in b
                if b[k] != a.get(k, 0) and k != "cmdstat_info"
            }

        medians = {name: round(statistics.median(values), 1) for name, values in results.items()}

        def round_ratios(name: str, reference: str) -> list[float]:
            # Per-round ratios: both sides were timed in the same interleaved batches.
            return [round(a / b, 2) for a, b in zip(results[name], results[reference], strict=True)]

        summary = {
            "ops_per_round": options.ops,
            "rounds": options.rounds,
            "median_us_per_op": medians,
            "all_rounds_us": {name: [round(v, 1) for v in values] for name, values in results.items()},
            # Headline ratios: the median of per-round ratios (each round times both sides together).
            "limiter_vs_raw_evalsha": statistics.median(round_ratios("limiter_hit", "raw_evalsha_return_1")),
            "django_ratelimit_vs_raw_evalsha": statistics.median(
                round_ratios("django_ratelimit_get_usage", "raw_evalsha_return_1")
            ),
            "http_limited_vs_bare": statistics.median(round_ratios("http_bare_view_rate_limited", "http_bare_view")),
            "per_round_limiter_vs_raw": round_ratios("limiter_hit", "raw_evalsha_return_1"),
            "per_round_django_ratelimit_vs_raw": round_ratios("django_ratelimit_get_usage", "raw_evalsha_return_1"),
            "per_round_http_limited_vs_bare": round_ratios("http_bare_view_rate_limited", "http_bare_view"),
            "limiter_extra_us_vs_raw": round(medians["limiter_hit"] - medians["raw_evalsha_return_1"], 1),
            "django_ratelimit_extra_us_vs_raw": round(
                medians["django_ratelimit_get_usage"] - medians["raw_evalsha_return_1"], 1
            ),
            "redis_commands_per_limiter_decision": per_call(before, middle),
            "redis_commands_per_django_ratelimit_check": per_call(middle, after),
            "redis_version": plain.info("server")["redis_version"],
            "python": sys.version.split()[0],
        }
        print(json.dumps(summary, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
