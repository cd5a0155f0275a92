"""Measure what webhooks cost: SQL per audited write, delivery throughput, commit-to-receipt latency.

    createdb -h 127.0.0.1 -U postgres webhooks_bench
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhooks_bench \
        .venv/bin/python -m bench.webhooks.run [--writes 200] [--events 500] [--samples 10]

Starts its own redis-server and a local receiver (http.server answering 204), migrates
the empty database BENCH_DATABASE_URL names (PostgreSQL: the latency part runs a courier
thread beside the writes, which SQLite would lock), and prints JSON:
- per write (`flag_set_override`): median µs and SQL statements with no subscribed
  endpoint (the reference: the audit receiver only looks) against 1 and 10 endpoints;
- delivery: `webhooks_deliver_due` rounds until `--events` deliveries to one endpoint
  and to 5 endpoints are all sent (signing, the bounded POST, the breaker, the log);
- latency: from the write's commit to the receiver's request, with the courier polling
  every WEBHOOKS_POLL_INTERVAL (1 s, the default), `--samples` times.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisProcess  # noqa: E402


class Receiver(http.server.BaseHTTPRequestHandler):
    arrivals: list[float] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.arrivals.append(time.perf_counter())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def configure(redis_url: str, db_path: Path) -> None:
    os.environ.update(
        {
            "READ_ENV_FILE": "false",
            "DJANGO_SETTINGS_MODULE": "agentapi_admin.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 60,
            "TOKEN_ENCRYPTION_KEY": "ab" * 32,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            # The courier thread writes beside the bench: SQLite would lock, so PostgreSQL when given.
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{db_path}",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        }
    )
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--samples", type=int, default=10)
    options = parser.parse_args()

    server = RedisProcess().start()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        configure(server.url, server.directory / "bench.sqlite3")
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from tenants.models import Plan
        from tenants.services.flags import flag_create, flag_set_override
        from tenants.services.tenants import tenant_create
        from webhooks.models import WebhookDelivery, WebhookEndpoint
        from webhooks.services.delivery import webhooks_courier_start, webhooks_deliver_due
        from webhooks.services.endpoints import endpoint_create

        call_command("migrate", verbosity=0)
        plan = Plan.objects.create(code="bench", name="Bench")
        tenant = tenant_create(slug="acme", name="Acme", plan=plan, actor=None)
        flag = flag_create(key="beta", description="", default=False, tenant_editable=False, actor=None)
        state = [False]

        def write():
            state[0] = not state[0]
            flag_set_override(tenant=tenant, flag=flag, enabled=state[0], actor=None)

        def endpoints(n):
            WebhookEndpoint.objects.all().delete()
            for _ in range(n):
                endpoint_create(tenant=None, url=url, event_types=["override.set"], actor=None)

        per_write = {}
        for n in (0, 1, 10):
            endpoints(n)
            for _ in range(20):
                write()
            with CaptureQueriesContext(connection) as queries:
                write()
            times = []
            for _ in range(options.writes):
                started = time.perf_counter()
                write()
                times.append((time.perf_counter() - started) * 1e6)
            per_write[f"{n}_endpoints"] = {"median_us": round(statistics.median(times), 1), "sql": len(queries)}
        reference = per_write["0_endpoints"]["median_us"]
        for entry in per_write.values():
            entry["ratio_to_no_endpoint"] = round(entry["median_us"] / reference, 2)

        delivery = {}
        for n in (1, 5):
            endpoints(n)
            WebhookDelivery.objects.all().delete()
            per_endpoint = options.events // n
            for _ in range(per_endpoint):
                write()
            Receiver.arrivals.clear()
            started = time.perf_counter()
            rounds = 0
            while WebhookDelivery.objects.filter(status="pending").exists():
                webhooks_deliver_due()
                rounds += 1
            elapsed = time.perf_counter() - started
            sent = per_endpoint * n
            assert len(Receiver.arrivals) == sent, (len(Receiver.arrivals), sent)
            delivery[f"{n}_endpoints"] = {
                "deliveries": sent,
                "rounds": rounds,
                "per_second": round(sent / elapsed, 1),
                "ms_per_delivery": round(elapsed / sent * 1000, 3),
            }

        endpoints(1)
        WebhookDelivery.objects.all().delete()
        from django.conf import settings

        webhooks_courier_start(interval=settings.WEBHOOKS_POLL_INTERVAL)
        latencies = []
        for _ in range(options.samples):
            Receiver.arrivals.clear()
            write()  # autocommit: committed when it returns
            committed = time.perf_counter()
            deadline = committed + 10
            while not Receiver.arrivals and time.perf_counter() < deadline:
                time.sleep(0.005)
            latencies.append((Receiver.arrivals[0] - committed) * 1000)
        summary = {
            "per_write": per_write,
            "delivery": delivery,
            "commit_to_receipt_ms": {
                "poll_interval_s": settings.WEBHOOKS_POLL_INTERVAL,
                "median": round(statistics.median(latencies), 1),
                "max": round(max(latencies), 1),
            },
            "load_average": os.getloadavg(),
        }
        print(json.dumps(summary, indent=1))
    finally:
        receiver.shutdown()
        server.stop()


if __name__ == "__main__":
    main()
