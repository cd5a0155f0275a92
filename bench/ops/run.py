"""Time the rate-limit counters page over 100k live identities against a bare Django view, same run.

    .venv/bin/python -m bench.ops.run [--identities 100000] [--requests 200] [--rounds 5]

Starts its own redis-server on a free port, fills it with live identities through
the limiter itself (pipelined decisions), logs a staff user in and, per
round, times interleaved batches through the in-process WSGI handler
(`django.test.Client`): a bare JSON view, the counters page's JSON twin (first page
and a later cursor page), the HTML page, and the Redis health JSON twin. Prints
JSON: median µs per request, the median of per-round ratios to the bare view, and
Redis commands per counters page from the INFO commandstats delta.
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


def configure(redis_url: str, db_path: Path) -> None:
    os.environ.update(
        {
            "READ_ENV_FILE": "false",
            "DJANGO_SETTINGS_MODULE": "bench.ops.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 60,
            "TOKEN_ENCRYPTION_KEY": "ab" * 32,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            "OPS_REFRESH_SECONDS": "10",
        }
    )
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per case per round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    server = RedisProcess().start()
    db_path = server.directory / "bench.sqlite3"
    try:
        configure(server.url, db_path)
        import redis
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from resilience.ratelimit.keys import bucket_index_keys
        from resilience.ratelimit.limiter import RateLimiter

        call_command("migrate", verbosity=0)
        plain = redis.Redis(port=server.port)
        limiter = RateLimiter()
        for first in range(0, options.identities, 2_000):
            last = min(first + 2_000, options.identities)
            # One request a day allowed: every identity stays live for the whole run.
            limiter.hit_many([("user", None, str(i), 1, 0, 86400, 1) for i in range(first, last)])
        assert sum(plain.zcard(index) for index in bucket_index_keys()) == options.identities

        staff = get_user_model().objects.create_user("bench", password="x" * 20, is_staff=True)
        http = Client()
        http.force_login(staff)
        later = http.get("/admin/ops/ratelimits/", {"format": "json"}).json()["next_cursor"]
        for _ in range(20):  # walk a few pages in, so the later page is not the second one
            later = http.get("/admin/ops/ratelimits/", {"cursor": later, "format": "json"}).json()["next_cursor"]

        cases = {
            "bare_view": lambda: http.get("/bench/bare"),
            "counters_json_first_page": lambda: http.get("/admin/ops/ratelimits/", {"format": "json"}),
            "counters_json_later_page": lambda: http.get("/admin/ops/ratelimits/", {"cursor": later, "format": "json"}),
            "counters_html_first_page": lambda: http.get("/admin/ops/ratelimits/"),
            "redis_health_json": lambda: http.get("/admin/ops/redis/", {"format": "json"}),
        }
        for fn in cases.values():  # warm every path (and the health page's sample and area caches)
            for _ in range(5):
                assert fn().status_code == 200
        results: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        for round_number in range(options.rounds):
            random.Random(round_number).shuffle(order)
            for name in order:
                started = time.perf_counter()
                for _ in range(options.requests):
                    cases[name]()
                results[name].append((time.perf_counter() - started) / options.requests * 1e6)

        before = {k: v["calls"] for k, v in plain.info("commandstats").items()}
        pages = 20
        for _ in range(pages):
            http.get("/admin/ops/ratelimits/", {"cursor": later, "format": "json"})
        after = {k: v["calls"] for k, v in plain.info("commandstats").items()}
        per_page = {
            k.removeprefix("cmdstat_"): (after[k] - before.get(k, 0)) / pages
            for k in after
            if after[k] != before.get(k, 0) and k != "cmdstat_info"
        }
        medians = {name: round(statistics.median(values), 1) for name, values in results.items()}
        ratios = {
            name: round(statistics.median(a / b for a, b in zip(results[name], results["bare_view"], strict=True)), 2)
            for name in cases
            if name != "bare_view"
        }
        summary = {
            "identities": options.identities,
            "requests_per_case_per_round": options.requests,
            "rounds": options.rounds,
            "median_us_per_request": medians,
            "ratio_to_bare_view_median_of_rounds": ratios,
            "redis_commands_per_counters_page": per_page,
            "load_average": os.getloadavg(),
        }
        print(json.dumps(summary, indent=1))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
