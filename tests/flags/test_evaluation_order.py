"""The evaluation order (tenants.flagrules): every step, the reason it gives, and what it serves."""

from __future__ import annotations

from tenants.flagrules import Evaluation, compile_entry, evaluate, rollout_admits, variant_bucket

TENANT = {
    "id": "0b8e2f1c-0000-4000-8000-000000000001",
    "slug": "acme",
    "plan": "pro",
    "status": "active",
    "labels": ["beta", "eu"],
    "settings": {"region": "eu-west-1", "max_concurrent_agents": 5},
}
COLOURS = [
    {"key": "red", "value": "#f00", "weight": 50},
    {"key": "green", "value": "#0f0", "weight": 30},
    {"key": "blue", "value": "#00f", "weight": 20},
]
SEGMENTS = {
    "eu": [{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}],
    "us": [{"attribute": "tenant.labels", "op": "in", "values": ["us"]}],
    "pro": [{"attribute": "tenant.plan", "op": "in", "values": ["pro", "enterprise"]}],
    "ios": [{"attribute": "context.platform", "op": "in", "values": ["ios"]}],
    "eu_ios": [
        {"attribute": "tenant.settings.region", "op": "starts_with", "values": ["eu-"]},
        {"attribute": "context.platform", "op": "in", "values": ["ios"]},
    ],
    "staff": [{"attribute": "subject", "op": "ends_with", "values": ["@example.com"]}],
}


def flag(**fields) -> dict:
    base = {"key": "theme", "kind": "boolean", "default": False, "tenant_editable": True, "rules": []}
    return {**base, **fields}


def answer(flag_fields: dict, subject: str = "user-1", context: dict | None = None, **layers) -> Evaluation:
    definition = flag(**flag_fields)
    layers.setdefault("segments", SEGMENTS)
    entry = compile_entry(flag=definition, tenant=layers.pop("tenant", TENANT), version=7, **layers)
    return evaluate(definition["key"], entry, subject, context)


def test_archived_wins_over_every_other_layer():
    result = answer(
        {"archived": True, "default": True},
        override={"enabled": True},
        owner={"enabled": True},
        plan_value=True,
    )
    assert (result.enabled, result.value, result.reason, result.version) == (False, False, "archived", 7)


def test_owner_off_wins_over_the_platform_override():
    result = answer({}, override={"enabled": True}, owner={"enabled": False})
    assert (result.enabled, result.reason) == (False, "owner_toggle")


def test_owner_choices_count_only_on_tenant_editable_flags():
    result = answer({"tenant_editable": False, "default": True}, owner={"enabled": False})
    assert (result.enabled, result.reason) == (True, "default")


def test_override_off():
    result = answer({"default": True}, override={"enabled": False}, plan_value=True)
    assert (result.enabled, result.reason) == (False, "admin_override")


def test_override_on_serves_its_variant_or_value():
    typed = {"kind": "string", "default_value": "#fff", "variants": COLOURS}
    by_variant = answer(typed, override={"enabled": True, "variant": "green"})
    assert (by_variant.value, by_variant.variant, by_variant.reason) == ("#0f0", "green", "admin_override")
    by_value = answer(typed, override={"enabled": True, "value": "#123"})
    assert (by_value.value, by_value.variant, by_value.reason) == ("#123", None, "admin_override")


def test_override_rollout_admits_by_subject_and_misses_are_off():
    results = {
        s: answer({}, subject=s, override={"enabled": True, "rollout_percent": 30}) for s in map(str, range(300))
    }
    assert {r.reason for r in results.values()} == {"rollout"}
    for subject, result in results.items():
        assert result.enabled is rollout_admits("theme", subject, 30)
    assert 60 < sum(r.enabled for r in results.values()) < 120


def test_a_rollout_miss_does_not_fall_through_to_rules_or_the_default():
    result = answer(
        {"default": True, "rules": [{"segment": None, "serve": {"enabled": True}}]},
        subject=next(s for s in map(str, range(100)) if not rollout_admits("theme", s, 10)),
        override={"enabled": True, "rollout_percent": 10},
    )
    assert (result.enabled, result.reason) == (False, "rollout")


def test_owner_pick_inside_owner_variants_is_served():
    typed = {"kind": "string", "default_value": "#fff", "variants": COLOURS}
    override = {"enabled": True, "variant": "red", "owner_variants": ["green", "blue"]}
    picked = answer(typed, override=override, owner={"enabled": True, "variant": "blue"})
    assert (picked.value, picked.variant, picked.reason) == ("#00f", "blue", "owner_toggle")


def test_owner_pick_outside_owner_variants_is_ignored():
    typed = {"kind": "string", "default_value": "#fff", "variants": COLOURS}
    override = {"enabled": True, "variant": "red", "owner_variants": ["green"]}
    ignored = answer(typed, override=override, owner={"enabled": True, "variant": "blue"})
    assert (ignored.value, ignored.variant, ignored.reason) == ("#f00", "red", "admin_override")


def test_owner_pick_within_a_rollout_keeps_the_rollout():
    typed = {"kind": "string", "default_value": "#fff", "variants": COLOURS}
    override = {"enabled": True, "rollout_percent": 50, "owner_variants": ["green"]}
    admitted = next(s for s in map(str, range(100)) if rollout_admits("theme", s, 50))
    result = answer(typed, subject=admitted, override=override, owner={"enabled": True, "variant": "green"})
    assert (result.enabled, result.variant, result.reason) == (True, "green", "rollout")


def test_owner_on_without_an_override():
    result = answer({"default": False}, owner={"enabled": True}, plan_value=False)
    assert (result.enabled, result.reason) == (True, "owner_toggle")


def test_rule_on_tenant_attributes_is_resolved_when_compiling():
    rules = [{"segment": "us", "serve": {"enabled": False}}, {"segment": "eu", "serve": {"enabled": True}}]
    entry = compile_entry(flag=flag(rules=rules), tenant=TENANT, version=7, segments=SEGMENTS)
    assert entry["steps"] == [{"reason": "rule", "rule": 2, "segment": "eu", "serve": {"enabled": True}}]
    result = evaluate("theme", entry, "anyone")
    assert (result.enabled, result.reason, result.rule) == (True, "rule", 2)


def test_rule_on_context_is_decided_per_request():
    rules = [{"segment": "eu_ios", "serve": {"enabled": True}}]
    assert answer({"rules": rules}, context={"platform": "ios"}).reason == "rule"
    android = answer({"rules": rules}, context={"platform": "android"})
    assert (android.enabled, android.reason, android.rule) == (False, "default", None)
    elsewhere = answer({"rules": rules}, context={"platform": "ios"}, tenant={**TENANT, "settings": {}})
    assert elsewhere.reason == "default"


def test_rule_on_the_subject():
    rules = [{"segment": "staff", "serve": {"enabled": True}}]
    assert answer({"rules": rules}, subject="ada@example.com").reason == "rule"
    assert answer({"rules": rules}, subject="ada@example.org").reason == "default"


def test_subject_percent_rule_misses_fall_to_the_next_step():
    rules = [{"segment": None, "percent": 25, "serve": {"enabled": True}}]
    for subject in map(str, range(200)):
        result = answer({"rules": rules, "default": False}, subject=subject)
        if rollout_admits("theme", subject, 25):
            assert (result.enabled, result.reason, result.rule) == (True, "rule", 1)
        else:
            assert (result.enabled, result.reason) == (False, "default")


def test_tenant_percent_rule_is_one_answer_for_every_subject_of_the_tenant():
    rules = [{"segment": None, "percent": 40, "bucket_by": "tenant", "serve": {"enabled": True}}]
    tenants = [{**TENANT, "id": f"t-{n}"} for n in range(200)]
    admitted = 0
    for tenant in tenants:
        entry = compile_entry(flag=flag(rules=rules), tenant=tenant, version=1, segments=SEGMENTS)
        answers = {(r.enabled, r.reason) for r in (evaluate("theme", entry, f"u{n}") for n in range(20))}
        assert len(answers) == 1
        inside = rollout_admits("theme", tenant["id"], 40)
        assert answers == {(True, "rule") if inside else (False, "default")}
        admitted += inside
    assert 50 < admitted < 110


def test_first_matching_rule_wins():
    typed = {
        "kind": "string",
        "default_value": "#fff",
        "variants": COLOURS,
        "rules": [
            {"segment": "ios", "serve": {"enabled": True, "variant": "blue"}},
            {"segment": "pro", "serve": {"enabled": True, "variant": "green"}},
            {"segment": None, "serve": {"enabled": True, "variant": "red"}},
        ],
    }
    ios = answer(typed, context={"platform": "ios"})
    assert (ios.variant, ios.rule) == ("blue", 1)
    web = answer(typed, context={"platform": "web"})
    assert (web.variant, web.rule) == ("green", 2)
    free = answer(typed, context={"platform": "web"}, tenant={**TENANT, "plan": "free"})
    assert (free.variant, free.rule) == ("red", 3)


def test_rule_serving_a_value_and_an_off_rule():
    typed = {"kind": "number", "default_value": 5, "default": True}
    served = answer({**typed, "rules": [{"segment": "eu", "serve": {"enabled": True, "value": 12}}]})
    assert (served.enabled, served.value, served.reason) == (True, 12, "rule")
    off = answer({**typed, "rules": [{"segment": "eu", "serve": {"enabled": False}}]})
    assert (off.enabled, off.value, off.reason) == (False, None, "rule")


def test_a_rule_naming_a_missing_segment_matches_nobody():
    result = answer({"rules": [{"segment": "gone", "serve": {"enabled": True}}], "default": False})
    assert (result.enabled, result.reason) == (False, "default")


def test_plan_then_default():
    assert (answer({"default": False}, plan_value=True).reason, answer({}, plan_value=True).enabled) == ("plan", True)
    off = answer({"default": True}, plan_value=False)
    assert (off.enabled, off.reason) == (False, "plan")
    default = answer({"default": True})
    assert (default.enabled, default.value, default.reason) == (True, True, "default")


def test_typed_default_serves_the_default_value_or_a_split():
    named = [{**v, "weight": 0} for v in COLOURS]
    plain = answer({"kind": "string", "default_value": "#fff", "variants": named, "default": True})
    assert (plain.value, plain.variant, plain.reason) == ("#fff", None, "default")
    split = answer({"kind": "string", "default_value": "#fff", "variants": COLOURS, "default": True}, subject="u")
    bucket = variant_bucket("theme", "u")
    expected = "red" if bucket < 5000 else "green" if bucket < 8000 else "blue"
    assert (split.variant, split.reason) == (expected, "split")
    off = answer({"kind": "string", "default_value": "#fff", "variants": COLOURS, "default": False})
    assert (off.enabled, off.value, off.variant, off.reason) == (False, None, None, "default")


def test_a_rule_without_a_variant_splits_with_reason_rule():
    typed = {"kind": "string", "default_value": "#fff", "variants": COLOURS}
    result = answer({**typed, "rules": [{"segment": "eu", "serve": {"enabled": True}}]}, subject="u")
    assert result.reason == "rule" and result.variant in {"red", "green", "blue"}


def test_json_flags_serve_objects():
    typed = {"kind": "json", "default_value": {"tools": ["git"]}, "default": True}
    assert answer(typed).value == {"tools": ["git"]}
