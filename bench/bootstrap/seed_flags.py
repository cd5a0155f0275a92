"""Bench-only: define F flags and S segments through the services, with rules on half of the flags.

    DJANGO_SETTINGS_MODULE=bench.bootstrap.settings python -m bench.bootstrap.seed_flags F S

A realistic mix for the warm-bootstrap bench: a quarter of the flags are typed (string,
number, JSON) with a 50/30/20 split; every other flag has two rules, one on a segment of
tenant attributes and one on a segment of evaluation context with a subject percentage.
Segments alternate tenant-attribute and context conditions. The demo tenant `acme` gets
the label `eu` so tenant rules decide for it. Never used outside bench/.
"""

from __future__ import annotations

import sys

import django


def seed(flags: int, segments: int) -> None:
    from tenants.models import Tenant
    from tenants.services.flags import flag_create, segment_create
    from tenants.services.tenants import tenant_update

    keys = []
    for n in range(segments):
        if n % 2 == 0:
            conditions = [{"attribute": "tenant.labels", "op": "in", "values": ["eu", f"label-{n}"]}]
        else:
            conditions = [
                {"attribute": "context.platform", "op": "in", "values": ["ios", "android"]},
                {"attribute": "context.app_version", "op": "semver_gte", "values": [f"2.{n}.0"]},
            ]
        keys.append(segment_create(key=f"bench-seg-{n:02d}", conditions=conditions, actor=None).key)
    colours = [
        {"key": "red", "value": "#f00", "weight": 50},
        {"key": "green", "value": "#0f0", "weight": 30},
        {"key": "blue", "value": "#00f", "weight": 20},
    ]
    for n in range(flags):
        typed = {}
        if n % 4 == 1:
            typed = {"kind": "string", "default_value": "#fff", "variants": colours}
        elif n % 4 == 3:
            typed = {"kind": "json", "default_value": {"tools": ["git"], "limit": n}}
        rules = []
        if n % 2 == 0 and keys:
            rules = [
                {"segment": keys[n % len(keys)], "serve": {"enabled": True}},
                {"segment": keys[(n + 1) % len(keys)], "percent": 25, "serve": {"enabled": n % 3 != 0}},
            ]
        flag_create(
            key=f"bench-flag-{n:03d}",
            description=f"bench flag {n}",
            default=n % 3 == 0,
            tenant_editable=n % 5 == 0,
            rules=rules,
            actor=None,
            **typed,
        )
    acme = Tenant.objects.get(slug="acme")
    tenant_update(tenant=acme, labels=["eu"], actor=None)


def main() -> int:
    flags, segments = int(sys.argv[1]), int(sys.argv[2])
    django.setup()
    seed(flags, segments)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
