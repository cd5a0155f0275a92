"""Bench-only: bulk-create N tenants on the demo plan, one API key each; write the secrets one per line.

    DJANGO_SETTINGS_MODULE=bench.bootstrap.settings python -m bench.bootstrap.seed_keys N FILE

Rows are written with bulk_create (no audit rows, no outbox): the bench needs many valid
keys quickly, not the services' bookkeeping. Never used outside bench/.
"""

from __future__ import annotations

import hashlib
import secrets
import sys

import django

BATCH = 1000


def seed(count: int) -> list[str]:
    from tenants.models import ApiKey, Plan, Tenant
    from tenants.services.apikeys import DEFAULT_SCOPES
    from tenants.services.demo import DEMO_PLAN

    plan = Plan.objects.get(code=DEMO_PLAN)
    found: list[str] = []
    for start in range(0, count, BATCH):
        numbers = range(start, min(start + BATCH, count))
        tenants = Tenant.objects.bulk_create(
            Tenant(slug=f"bench-{n:06d}", name=f"Bench {n}", plan=plan, status=Tenant.Status.ACTIVE) for n in numbers
        )
        rows = []
        for n, tenant in zip(numbers, tenants, strict=True):
            prefix = f"f{n:07x}"  # the demo keys' prefixes are random hex: a leading "f" + 7 digits is ours
            secret = f"aak_{prefix}_{secrets.token_urlsafe(32)}"
            found.append(secret)
            rows.append(
                ApiKey(
                    tenant=tenant,
                    name="bench",
                    prefix=prefix,
                    secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
                    scopes=DEFAULT_SCOPES,
                )
            )
        ApiKey.objects.bulk_create(rows)
    return found


def main() -> int:
    count, path = int(sys.argv[1]), sys.argv[2]
    django.setup()
    with open(path, "w") as out:
        out.write("\n".join(seed(count)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
