"""Time the per-flag page and the stale-flag report over many tenants, cold and warm.

    .venv/bin/python -m bench.flagviews.run [--tenants 10000] [--flags 20]

Starts its own redis-server on a free port and uses a temporary SQLite database (or
DATABASE_URL when set), bulk-creates the tenants, flags and an override on every tenth
tenant (no audit rows: the bench needs rows, not bookkeeping), then measures with every
document missing (cold: flags compiled from the database, batch by batch) and with every
tenant's rules cached (warm: one pipelined HMGET per 500 tenants). Prints a JSON summary:
seconds, SQL queries and Redis round trips of one page of 50, of a filtered page (every
tenant answered), of the CSV of every tenant and of the stale report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisProcess  # noqa: E402


def seed(tenants: int, flags: int) -> None:
    from tenants.models import Flag, Plan, Tenant, TenantFlag

    plan = Plan.objects.create(code="bench", name="Bench")
    made = [
        Flag(key=f"flag-{n:02d}", description="bench", default=bool(n % 2))
        if n % 3
        else Flag(
            key=f"flag-{n:02d}",
            kind="string",
            default=True,
            default_value="light",
            variants=[{"key": "dark", "value": "dark", "weight": 0}],
        )
        for n in range(flags)
    ]
    Flag.objects.bulk_create(made)
    for start in range(0, tenants, 1000):
        rows = Tenant.objects.bulk_create(
            Tenant(slug=f"bench-{n:06d}", name=f"Bench {n}", plan=plan, status=Tenant.Status.ACTIVE)
            for n in range(start, min(start + 1000, tenants))
        )
        TenantFlag.objects.bulk_create(
            TenantFlag(tenant=t, flag=made[0], enabled=True) for n, t in enumerate(rows) if n % 10 == 0
        )


def warm_all() -> float:
    """Cache every tenant's rules (the fields the pages read) as the API's documents would."""
    from resilience.connection import get_redis
    from tenants.flagreport import _compile
    from tenants.keys import document_key
    from tenants.models import Flag, Tenant

    started = time.perf_counter()
    flags = list(Flag.objects.all())
    tenants = list(Tenant.objects.values("pk", "slug", "cache_version"))
    for start in range(0, len(tenants), 500):
        batch = tenants[start : start + 500]
        rules = _compile([(t["pk"], "production") for t in batch], flags)
        with get_redis().pipeline(transaction=False) as pipe:
            for tenant in batch:
                name = document_key(tenant["slug"], tenant["pk"])
                pipe.hset(
                    name,
                    mapping={"ver": tenant["cache_version"], "rules": json.dumps(rules[tenant["pk"], "production"])},
                )
            pipe.execute()
    return round(time.perf_counter() - started, 2)


def measure(label: str, work, redis_client) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    before = redis_client.info("stats")["total_commands_processed"]
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = work()
    seconds = time.perf_counter() - started
    commands = redis_client.info("stats")["total_commands_processed"] - before - 1
    return {"what": label, "seconds": round(seconds, 3), "sql": len(queries), "redis_commands": commands, **result}


def scenario(redis_client) -> list[dict]:
    from tenants.flagreport import FlagTenantFilters, FlagTenants, flags_staleness
    from tenants.models import Flag

    flag = Flag.objects.get(key="flag-00")

    def page():
        tenants = FlagTenants(flag, FlagTenantFilters())
        return {"rows": len(tenants.page_rows(tenants.rows()[:50]))}

    def filtered():
        tenants = FlagTenants(flag, FlagTenantFilters(reason="admin_override"))
        return {"rows": len(tenants.rows())}

    def export():
        return {"rows": sum(1 for _ in FlagTenants(flag, FlagTenantFilters()).iter_all())}

    def stale():
        report = flags_staleness(30)
        return {"flags": len(report.flags), "uniform": sum(f.uniform for f in report.flags)}

    return [
        measure("page of 50", page, redis_client),
        measure("filtered by reason (every tenant answered)", filtered, redis_client),
        measure("CSV of every tenant", export, redis_client),
        measure("stale report", stale, redis_client),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--flags", type=int, default=20)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-flagviews-"))
    server = RedisProcess(directory=workdir / "redis").start()
    os.environ.update(
        READ_ENV_FILE="false",
        DEBUG="true",
        REDIS_URL=server.url,
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="agentapi_admin.settings",
    )
    try:
        import django
        import redis
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        seed(options.tenants, options.flags)
        seeded = round(time.perf_counter() - started, 2)
        client = redis.Redis(port=server.port)
        cold = scenario(client)
        warmed = warm_all()
        warm = scenario(client)
        print(
            json.dumps(
                {
                    "tenants": options.tenants,
                    "flags": options.flags,
                    "seed_s": seeded,
                    "warm_up_s": warmed,
                    "cold": cold,
                    "warm": warm,
                },
                indent=2,
            )
        )
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
