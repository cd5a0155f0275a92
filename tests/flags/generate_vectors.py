"""Write tests/flags/vectors.json from the server's evaluator (run once; the file is then the contract).

    python -m tests.flags.generate_vectors

Version 2: each case is {flag, entry, subject, context, expected}. `entry` is the flag compiled for
one tenant exactly as the bootstrap's `eval` carries it; `expected` is {enabled, value, variant,
reason, rule} for the subject and context. Every evaluator (the server's, each SDK's) must give
`expected` for every case.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

VECTORS = Path(__file__).with_name("vectors.json")

TENANTS = [
    {
        "id": "7d0c3a9e-1f1b-4c55-9a5e-3b1f0e6c2a01",
        "slug": "acme",
        "plan": "pro",
        "status": "active",
        "labels": ["beta", "eu"],
        "settings": {"region": "eu-west-1", "seats": 12},
    },
    {
        "id": "0b8e2f1c-95a4-4d8e-8f3c-6a2e7d9b1c02",
        "slug": "globex",
        "plan": "free",
        "status": "trial",
        "labels": [],
        "settings": {"region": "us-east-1"},
    },
]

# One segment per operator, on the evaluation context or the subject, plus tenant segments.
SEGMENTS = {
    "op-in": [{"attribute": "context.country", "op": "in", "values": ["de", "fr", 49]}],
    "op-not_in": [{"attribute": "context.country", "op": "not_in", "values": ["us"]}],
    "op-contains": [{"attribute": "context.email", "op": "contains", "values": ["@example."]}],
    "op-starts_with": [{"attribute": "context.path", "op": "starts_with", "values": ["/admin", "/ops"]}],
    "op-ends_with": [{"attribute": "subject", "op": "ends_with", "values": ["@example.com"]}],
    "op-regex": [{"attribute": "context.ua", "op": "regex", "values": [r"^Mozilla/5\.0 \((iPhone|iPad)"]}],
    "op-lt": [{"attribute": "context.age", "op": "lt", "values": [18]}],
    "op-lte": [{"attribute": "context.age", "op": "lte", "values": [18.5]}],
    "op-gt": [{"attribute": "context.age", "op": "gt", "values": ["65"]}],
    "op-gte": [{"attribute": "context.age", "op": "gte", "values": [65]}],
    "op-semver_eq": [{"attribute": "context.app_version", "op": "semver_eq", "values": ["2.0.0"]}],
    "op-semver_lt": [{"attribute": "context.app_version", "op": "semver_lt", "values": ["2.0.0"]}],
    "op-semver_lte": [{"attribute": "context.app_version", "op": "semver_lte", "values": ["2.0.0-rc.2"]}],
    "op-semver_gt": [{"attribute": "context.app_version", "op": "semver_gt", "values": ["2.0.0-beta.11"]}],
    "op-semver_gte": [{"attribute": "context.app_version", "op": "semver_gte", "values": ["v2.0.0"]}],
    "op-before": [{"attribute": "context.signup", "op": "before", "values": ["2026-01-01"]}],
    "op-after": [{"attribute": "context.signup", "op": "after", "values": ["2026-06-01T12:00:00+02:00"]}],
    "op-list": [{"attribute": "context.groups", "op": "in", "values": ["admins"]}],
    "op-all": [
        {"attribute": "context.country", "op": "in", "values": ["de"]},
        {"attribute": "context.age", "op": "gte", "values": [18]},
    ],
    "t-labels": [{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}],
    "t-plan": [{"attribute": "tenant.plan", "op": "in", "values": ["pro", "enterprise"]}],
    "t-region": [{"attribute": "tenant.settings.region", "op": "starts_with", "values": ["eu-"]}],
    "t-status-ctx": [
        {"attribute": "tenant.status", "op": "in", "values": ["active"]},
        {"attribute": "context.country", "op": "in", "values": ["de"]},
    ],
}

CONTEXTS = {
    "country": ["de", "fr", "us", 49, "DE", ""],
    "email": ["ada@example.com", "bob@example.org", "eve@mail.test"],
    "path": ["/admin/users", "/ops", "/home", "/Admin"],
    "ua": [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
        "Mozilla/5.0 (iPad; CPU OS 16_0)",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "x" * 300,  # beyond the regex input bound
    ],
    "age": [17, 18, 18.5, 19, 65, 66, "17", "sixty", True, 64.999],
    "app_version": ["1.9.9", "2.0.0", "v2.0.0", "2.0.0-rc.1", "2.0.0-beta.2", "2.0.0-beta.11", "2.0.1", "2.0", "x"],
    "signup": ["2025-12-31", "2026-01-01", "2026-06-01T10:00:00Z", "2026-06-01T10:00:01Z", 1_800_000_000, "soon"],
    "groups": [["admins", "dev"], ["dev"], [], "admins"],
}
SUBJECTS = ["user-7", "", "ünïcødé-用户", "a" * 200, "42", "user 7", "😀", "ada@example.com", "tenant:0b8e2f1c"]
COLOURS = [
    {"key": "red", "value": "#f00", "weight": 50},
    {"key": "green", "value": "#0f0", "weight": 30},
    {"key": "blue", "value": "#00f", "weight": 20},
]


def flags() -> list[tuple[dict, dict]]:
    """Return (flag definition, layers) pairs covering every reason, kind and bucket."""
    typed = {"kind": "string", "default": True, "default_value": "#fff", "variants": COLOURS}
    named = {**typed, "variants": [{**v, "weight": 0} for v in COLOURS]}
    cases: list[tuple[dict, dict]] = []
    for segment in SEGMENTS:
        if segment.startswith("op-"):
            rules = [{"segment": segment, "percent": 100, "bucket_by": "subject", "serve": {"enabled": True}}]
            cases.append(({"key": segment, "default": False, "rules": rules}, {}))
    cases += [
        ({"key": "archived", "default": True, "archived": True}, {"override": {"enabled": True}}),
        ({"key": "owner-off", "default": True, "tenant_editable": True}, {"owner": {"enabled": False}}),
        ({"key": "owner-on", "default": False, "tenant_editable": True}, {"owner": {"enabled": True}}),
        ({"key": "override-off", "default": True}, {"override": {"enabled": False}, "plan_value": True}),
        ({"key": "override-on", "default": False}, {"override": {"enabled": True}}),
        ({"key": "rollout", "default": False}, {"override": {"enabled": True, "rollout_percent": 30}}),
        ({"key": "rollout-1", "default": False}, {"override": {"enabled": True, "rollout_percent": 1}}),
        ({"key": "override-variant", **typed}, {"override": {"enabled": True, "variant": "blue"}}),
        ({"key": "override-value", **typed}, {"override": {"enabled": True, "value": "#123"}}),
        (
            {"key": "owner-pick", **typed, "tenant_editable": True},
            {
                "override": {"enabled": True, "variant": "red", "owner_variants": ["green"]},
                "owner": {"enabled": True, "variant": "green"},
            },
        ),
        (
            {"key": "owner-pick-outside", **typed, "tenant_editable": True},
            {
                "override": {"enabled": True, "variant": "red", "owner_variants": ["green"]},
                "owner": {"enabled": True, "variant": "blue"},
            },
        ),
        (
            {"key": "owner-pick-rollout", **typed, "tenant_editable": True},
            {
                "override": {"enabled": True, "rollout_percent": 50, "owner_variants": ["green"]},
                "owner": {"enabled": True, "variant": "green"},
            },
        ),
        ({"key": "plan-on", "default": False}, {"plan_value": True}),
        ({"key": "plan-off", "default": True}, {"plan_value": False}),
        ({"key": "default-on", "default": True}, {}),
        ({"key": "default-off", "default": False}, {}),
        ({"key": "split", **typed}, {}),
        ({"key": "split-off", **typed, "default": False}, {}),
        ({"key": "named-default", **named}, {}),
        ({"key": "plan-split", **typed, "default": False}, {"plan_value": True}),
        ({"key": "number", "kind": "number", "default": True, "default_value": 5}, {}),
        (
            {
                "key": "number-split",
                "kind": "number",
                "default": True,
                "default_value": 0,
                "variants": [{"key": "low", "value": 1.5, "weight": 10}, {"key": "high", "value": 100, "weight": 90}],
            },
            {},
        ),
        (
            {
                "key": "json",
                "kind": "json",
                "default": True,
                "default_value": {"tools": ["git"], "limits": {"cpu": 2}},
                "variants": [{"key": "big", "value": {"tools": ["git", "gh"], "limits": {"cpu": 8}}, "weight": 0}],
                "rules": [{"segment": "op-list", "serve": {"enabled": True, "variant": "big"}}],
            },
            {},
        ),
        (
            {
                "key": "subject-percent",
                "default": False,
                "rules": [{"segment": None, "percent": 30, "bucket_by": "subject", "serve": {"enabled": True}}],
            },
            {},
        ),
        (
            {
                "key": "tenant-percent",
                "default": False,
                "rules": [{"segment": None, "percent": 50, "bucket_by": "tenant", "serve": {"enabled": True}}],
            },
            {},
        ),
        (
            {
                "key": "first-match",
                **typed,
                "rules": [
                    {"segment": "op-regex", "serve": {"enabled": True, "variant": "blue"}},
                    {"segment": "t-status-ctx", "serve": {"enabled": True, "value": "#de0"}},
                    {"segment": "op-semver_gte", "percent": 50, "serve": {"enabled": True, "variant": "green"}},
                    {"segment": "t-labels", "serve": {"enabled": False}},
                    {"segment": "t-plan", "serve": {"enabled": True}},
                ],
            },
            {},
        ),
        (
            {
                "key": "tenant-rules",
                "default": False,
                "rules": [
                    {"segment": "t-region", "serve": {"enabled": True}},
                    {"segment": None, "serve": {"enabled": False}},
                ],
            },
            {},
        ),
    ]
    return cases


def main() -> None:
    from tenants.flagrules import REASONS, compile_entry, evaluate

    rng = random.Random(20261202)
    cases = []
    for definition, layers in flags():
        key = definition["key"]
        for tenant in TENANTS:
            flag = {"kind": "boolean", "rules": [], "tenant_editable": False, "archived": False, **definition}
            entry = compile_entry(flag=flag, tenant=tenant, version=1_764_670_000_000, segments=SEGMENTS, **layers)
            runs = 14 if key.startswith("op-") else 4
            for _ in range(runs):
                subject = rng.choice([*SUBJECTS, f"user-{rng.randrange(10**6)}", f"user-{rng.randrange(10**6)}"])
                names = rng.sample(sorted(CONTEXTS), k=rng.randrange(0, 4))
                if key.startswith("op-"):
                    names.extend(c["attribute"][8:] for c in SEGMENTS[key] if c["attribute"].startswith("context."))
                context = {name: rng.choice(CONTEXTS[name]) for name in names}
                if rng.random() < 0.15:
                    context = {}  # missing context: no condition on it holds
                result = evaluate(key, entry, subject, context)
                expected = {
                    "enabled": result.enabled,
                    "value": result.value,
                    "variant": result.variant,
                    "reason": result.reason,
                    "rule": result.rule,
                }
                case = {"flag": key, "entry": entry, "subject": subject, "context": context, "expected": expected}
                cases.append(case)
    seen = {case["expected"]["reason"] for case in cases}
    assert seen == set(REASONS), set(REASONS) - seen
    # One case per line: a change to the evaluator shows as the cases it changes.
    lines = ",\n".join(json.dumps(case, ensure_ascii=False, sort_keys=True) for case in cases)
    VECTORS.write_text('{"version": 2, "cases": [\n' + lines + "\n]}\n")


if __name__ == "__main__":
    main()
