"""flags_export / flags_import: flags, plans, tenants and overrides as one reviewable document.

The round trip is judged by what matters to AgentAPI replicas: the service API's answers.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from tenants.models import ApiKey, Flag, Plan, Segment, Tenant, TenantFlag
from tenants.services.flags import flag_owner_toggle, flag_set_override, flag_update, segment_create
from tenants.services.tenants import tenant_suspend
from tests.commands.conftest import db_state, redis_state
from tests.tenants.factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

# Effects reach Redis after commit (the outbox), as in production: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return make_staff("oncall")


BETA_USERS = [
    {"attribute": "tenant.labels", "op": "in", "values": ["beta"]},
    {"attribute": "context.app_version", "op": "semver_gte", "values": ["1.2.0"]},
]
MODELS = [{"key": "small", "value": "gpt-s", "weight": 50}, {"key": "large", "value": "gpt-l", "weight": 50}]
LIMITS_SCHEMA = {"type": "object", "properties": {"max": {"type": "integer"}}, "required": ["max"]}


@pytest.fixture
def estate():
    """Segments, boolean and typed flags, plans, tenants in every status, labels, overrides, owner picks, rollouts."""
    segment_create(key="beta-users", name="Beta users", conditions=BETA_USERS, actor=None)
    segment_create(key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None)
    make_flag("beta", default=False, description="The beta editor")
    make_flag("tools", default=True, tenant_editable=True)
    flag_update(flag=make_flag("legacy"), archived=True, actor=None)
    model = make_flag(
        "model",
        default=True,
        tenant_editable=True,
        kind="string",
        default_value="gpt-m",
        variants=MODELS,
        rules=[
            {"segment": "beta-users", "percent": 50, "serve": {"variant": "large"}},
            {"segment": "eu", "bucket_by": "tenant", "serve": {"value": "gpt-eu"}},
        ],
    )
    limits = make_flag("limits", default=True, kind="json", default_value={"max": 5}, schema=LIMITS_SCHEMA)
    std = make_plan("std", daily_quota=1000, default_flags={"beta": True})
    pro = make_plan("pro", rate_limit_per_minute=600, burst=50)
    owner = make_user("acme-owner")
    acme = make_tenant(
        "acme", plan=std, owner=owner, status="active", settings={"agent_type": "goose"}, labels=["beta", "eu"]
    )
    globex = make_tenant("globex", plan=pro, upstream_url="https://agents.globex.example")
    initech = make_tenant("initech", plan=pro, status="active", labels=["eu"])
    flag_set_override(tenant=globex, flag=Flag.objects.get(key="beta"), enabled=True, rollout_percent=30, actor=None)
    flag_owner_toggle(tenant=acme, flag=Flag.objects.get(key="tools"), enabled=False, actor=owner)
    flag_set_override(
        tenant=acme, flag=model, enabled=True, variant="small", owner_variants=["small", "large"], actor=None
    )
    flag_owner_toggle(tenant=acme, flag=model, enabled=True, variant="large", actor=owner)
    flag_set_override(tenant=globex, flag=limits, enabled=True, rollout_percent=60, value={"max": 50}, actor=None)
    tenant_suspend(tenant=initech, reason="unpaid", actor=None)
    return {"acme": acme, "globex": globex, "initech": initech}


def export(*args: str) -> str:
    out = StringIO()
    call_command("flags_export", *args, stdout=out)
    return out.getvalue()


def import_(path, *args: str) -> dict:
    out = StringIO()
    call_command("flags_import", str(path), "--actor", "oncall", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def answers() -> dict:
    """Return, per tenant, what a fresh key of it is answered (bootstrap and each flag), minus versions."""
    result = {}
    for tenant in Tenant.objects.order_by("slug"):
        _, secret = make_key(tenant, name="probe")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        response = client.get("/api/v1/bootstrap")
        body = response.json()
        if response.status_code == 200:
            body.pop("cache_version")
            for flag in body["flags"].values():
                flag.pop("version")
                flag["eval"].pop("version")
        flags = {}
        for key in Flag.objects.values_list("key", flat=True):
            answer = client.get(f"/api/v1/flags/{key}?subject=user-7").json()
            answer.pop("version", None)
            flags[key] = answer
        result[tenant.slug] = {"status": response.status_code, "bootstrap": body, "flags": flags}
    ApiKey.objects.filter(name="probe").delete()
    return result


def wipe(redis_client) -> None:
    for model in (TenantFlag, ApiKey, AuditEvent, Tenant, Plan, Flag, Segment):
        model.objects.all().delete()
    redis_client.flushdb()


def test_export_lists_everything_sorted_and_versioned(estate):
    doc = yaml.safe_load(export())
    assert doc["version"] == 2
    assert list(doc) == ["version", "segments", "flags", "plans", "tenants"]
    assert doc["segments"]["beta-users"] == {"name": "Beta users", "description": "", "conditions": BETA_USERS}
    assert list(doc["flags"]) == ["beta", "legacy", "limits", "model", "tools"]
    # A boolean flag reads as it did in version 1: the typed fields appear only when they say something.
    assert doc["flags"]["beta"] == {
        "description": "The beta editor",
        "default": False,
        "tenant_editable": False,
        "risky": False,
        "archived": False,
    }
    model = doc["flags"]["model"]
    assert (model["kind"], model["default_value"], model["variants"]) == ("string", "gpt-m", MODELS)
    assert model["rules"][0] == {
        "segment": "beta-users",
        "percent": 50,
        "bucket_by": "subject",
        "serve": {"enabled": True, "variant": "large"},
    }
    assert doc["flags"]["limits"]["schema"] == LIMITS_SCHEMA
    assert doc["plans"]["std"]["default_flags"] == {"beta": True} and doc["plans"]["std"]["daily_quota"] == 1000
    assert doc["tenants"]["globex"]["overrides"] == {
        "beta": {"enabled": True, "rollout_percent": 30},
        "limits": {"enabled": True, "rollout_percent": 60, "value": {"max": 50}},
    }
    assert doc["tenants"]["acme"]["overrides"]["model"] == {
        "enabled": True,
        "rollout_percent": 100,
        "variant": "small",
        "owner_variants": ["small", "large"],
    }
    assert doc["tenants"]["acme"]["owner_toggles"] == {"model": {"enabled": True, "variant": "large"}, "tools": False}
    assert doc["tenants"]["acme"]["labels"] == ["beta", "eu"] and "labels" not in doc["tenants"]["globex"]
    assert doc["tenants"]["initech"]["status"] == "suspended"
    assert doc["tenants"]["initech"]["status_reason"] == "unpaid"
    assert json.loads(export("--format", "json")) == doc


def test_round_trip_on_a_fresh_database_reproduces_every_answer(estate, operator, redis_client, tmp_path):
    before = answers()
    path = tmp_path / "estate.yaml"
    path.write_text(export())
    wipe(redis_client)

    summary = import_(path)
    assert summary["changes"] > 0 and summary["applied"] is True
    assert answers() == before
    # One audit row per change, as the operator.
    assert AuditEvent.objects.filter(actor_user=operator).count() >= summary["changes"]

    again = import_(path)
    assert again["changes"] == 0 and again["diff"] == []


def test_second_import_says_nothing_changes_in_text_mode(estate, operator, tmp_path):
    path = tmp_path / "estate.yaml"
    path.write_text(export())
    audit_rows = AuditEvent.objects.count()
    out = StringIO()
    call_command("flags_import", str(path), "--actor", "oncall", stdout=out)
    assert "no changes" in out.getvalue()
    assert AuditEvent.objects.count() == audit_rows


def test_dry_run_shows_the_diff_and_writes_nothing(estate, operator, redis_client, tmp_path):
    doc = yaml.safe_load(export())
    doc["flags"]["beta"]["default"] = True
    doc["flags"]["new_editor"] = {"description": "New editor", "default": False}
    doc["plans"]["std"]["daily_quota"] = 2000
    doc["tenants"]["globex"]["overrides"]["beta"]["rollout_percent"] = 60
    del doc["tenants"]["acme"]["owner_toggles"]["tools"]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(doc))
    db_before, redis_before = db_state(), redis_state(redis_client)

    summary = import_(path, "--dry-run", "--prune")
    assert summary["dry_run"] is True and summary["applied"] is False
    lines = summary["diff"]
    assert "+ flag new_editor" in lines
    assert "~ flag beta: default false -> true" in lines
    assert "~ plan std: daily_quota 1000 -> 2000" in lines
    assert "~ override globex/beta: rollout_percent 30 -> 60" in lines
    assert "- owner_toggle acme/tools" in lines
    assert db_state() == db_before and redis_state(redis_client) == redis_before

    out = StringIO()
    call_command("flags_import", str(path), "--actor", "oncall", "--dry-run", stdout=out)
    assert "~ plan std: daily_quota 1000 -> 2000" in out.getvalue()


def test_apply_changes_answers_and_prune_is_explicit(estate, operator, tmp_path):
    doc = yaml.safe_load(export())
    doc["flags"]["beta"]["default"] = True
    del doc["flags"]["tools"]
    del doc["tenants"]["globex"]["overrides"]["beta"]
    path = tmp_path / "next.yaml"
    path.write_text(yaml.safe_dump(doc))

    summary = import_(path)
    assert Flag.objects.get(key="beta").default is True
    # Without --prune, what the document leaves out stays.
    assert Flag.objects.get(key="tools").archived is False
    assert TenantFlag.objects.filter(tenant__slug="globex", flag__key="beta").exists()
    assert summary["changes"] == 1

    summary = import_(path, "--prune")
    assert Flag.objects.get(key="tools").archived is True
    assert not TenantFlag.objects.filter(tenant__slug="globex", flag__key="beta").exists()
    assert summary["changes"] == 2
    assert AuditEvent.objects.filter(action="flag.clear_override", actor_user=operator).count() == 1


def test_tenant_status_follows_the_document(estate, operator, tmp_path):
    doc = yaml.safe_load(export())
    doc["tenants"]["initech"]["status"] = "active"
    doc["tenants"]["initech"]["status_reason"] = ""
    doc["tenants"]["acme"]["status"] = "suspended"
    doc["tenants"]["acme"]["status_reason"] = "security review"
    path = tmp_path / "status.yaml"
    path.write_text(yaml.safe_dump(doc))
    summary = import_(path)
    assert '~ tenant initech: status "suspended" -> "active"' in summary["diff"]
    assert Tenant.objects.get(slug="initech").status == "active"
    acme = Tenant.objects.get(slug="acme")
    assert acme.status == "suspended" and acme.status_reason == "security review"


def test_a_trial_suspended_then_set_active_by_the_document_ends_active(estate, operator, tmp_path):
    tenant_suspend(tenant=estate["globex"], reason="review", actor=None)  # globex was a trial
    doc = yaml.safe_load(export())
    doc["tenants"]["globex"]["status"] = "active"
    doc["tenants"]["globex"]["status_reason"] = ""
    path = tmp_path / "activate.yaml"
    path.write_text(yaml.safe_dump(doc))
    import_(path)
    assert Tenant.objects.get(slug="globex").status == "active"
    actions = list(AuditEvent.objects.filter(tenant__slug="globex").order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["tenant.resume", "tenant.activate"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=3), r"version: this file is version 3; flags_import reads versions 1 and 2"),
        (lambda d: d["flags"]["beta"].update(defualt=True), r"flags\.beta: unknown field 'defualt'"),
        (lambda d: d["flags"]["beta"].update(default="yes"), r"flags\.beta\.default: must be true or false"),
        (lambda d: d["flags"].update({"Bad Key": {}}), r"flags\.Bad Key: a flag key is 1-64 characters"),
        (lambda d: d["plans"]["std"].update(default_flags={"nope": True}), r"plans\.std\.default_flags.*nope"),
        (lambda d: d["tenants"]["acme"].update(plan="gold"), r"tenants\.acme\.plan: unknown plan 'gold'"),
        (
            lambda d: d["tenants"]["acme"]["overrides"].update(beta={"enabled": True, "rollout_percent": 150}),
            r"tenants\.acme\.overrides\.beta\.rollout_percent: a whole number from 0 to 100",
        ),
        (lambda d: d["tenants"]["acme"].update(settings={"agent_type": 5}), r"tenants\.acme\.settings"),
        (lambda d: d.pop("flags"), r"flags: missing"),
        (lambda d: d["tenants"]["acme"].update(id="nope"), r"tenants\.acme\.id: must be a UUID"),
        (
            lambda d: d["tenants"]["acme"].update(id="0b8e2f1c-0000-4000-8000-000000000000"),
            r"tenants\.acme\.id: the database's tenant acme has id",
        ),
        (lambda d: d["tenants"]["globex"].update(status="active"), r"tenants\.globex\.status: .* trial to active"),
        (lambda d: d.pop("segments"), r"segments: missing"),
        (
            lambda d: d["segments"]["eu"]["conditions"][0].update(op="like"),
            r"segments\.eu\.conditions\[0\]\.op: op must be one of",
        ),
        (
            lambda d: d["flags"]["model"]["variants"][0].update(weight=70),
            r"flags\.model\.variants: weights add up to 120",
        ),
        (
            lambda d: d["flags"]["model"]["rules"][0].update(segment="nobody"),
            r"flags\.model\.rules\[0\]\.segment: no segment 'nobody'",
        ),
        (
            lambda d: d["flags"]["limits"].update(default_value={"max": "lots"}),
            r"flags\.limits\.default_value: does not match the flag's JSON Schema",
        ),
        (lambda d: d["flags"]["beta"].update(default_value=True), r"flags\.beta\.default_value: a boolean flag"),
        (lambda d: d["flags"]["model"].pop("default_value"), r"flags\.model\.default_value: missing"),
        (
            lambda d: d["flags"]["beta"].update(kind="string", default_value="on"),
            r"flags\.beta\.kind: the database's flag beta is a boolean flag, and a kind is permanent",
        ),
        (lambda d: d["tenants"]["acme"].update(labels=["Not ok"]), r"tenants\.acme\.labels: label 'not ok'"),
        (
            lambda d: d["tenants"]["acme"]["overrides"]["model"].update(variant="huge"),
            r"tenants\.acme\.overrides\.model\.variant: no variant 'huge' on flag model",
        ),
        (
            lambda d: d["tenants"]["globex"]["overrides"]["limits"].update(value={"max": 1.5}),
            r"tenants\.globex\.overrides\.limits\.value: does not match",
        ),
        (
            lambda d: d["segments"]["eu"]["conditions"][0]["values"].append("e\x00u"),
            r"segments\.eu\.conditions\[0\]\.values\[1\]: text cannot contain a NUL character",
        ),
        (
            lambda d: d["tenants"]["acme"]["owner_toggles"].update(model={"enabled": False, "variant": "large"}),
            r"tenants\.acme\.owner_toggles\.model\.variant: an owner picks a variant only with the flag on",
        ),
    ],
)
def test_bad_documents_name_the_path_and_change_nothing(estate, operator, tmp_path, mutate, message):
    doc = yaml.safe_load(export())
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    before = db_state()
    with pytest.raises(CommandError, match=message):
        import_(path)
    assert db_state() == before


def test_a_hand_written_document_needs_only_what_differs_from_the_defaults(operator, tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        "version: 1\n"
        "flags: {beta: {}}\n"
        "plans: {std: {name: Standard, default_flags: {beta: true}}}\n"
        "tenants: {acme: {name: Acme, plan: std, overrides: {beta: {enabled: true, rollout_percent: 25}}}}\n"
    )
    summary = import_(path)
    assert summary["diff"] == ["+ flag beta", "+ plan std", "+ tenant acme", "+ override acme/beta"]
    tenant = Tenant.objects.get(slug="acme")
    assert tenant.status == "trial" and tenant.plan.default_flags == {"beta": True}
    assert TenantFlag.objects.get(tenant=tenant).rollout_percent == 25
    assert import_(path)["changes"] == 0


def test_unreadable_files(operator, tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*missing\.yaml"):
        import_(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("flags: [unclosed\n")
    with pytest.raises(CommandError, match=r"broken\.yaml is not valid YAML or JSON"):
        import_(broken)


def test_export_to_a_file(estate, tmp_path):
    target = tmp_path / "out.json"
    out = StringIO()
    call_command("flags_export", "--format", "json", "--output", str(target), stdout=out)
    assert json.loads(target.read_text())["version"] == 2
    assert str(target) in out.getvalue()


def test_import_needs_the_permissions_of_every_change(estate, tmp_path):
    make_user("viewer", is_staff=True)
    path = tmp_path / "estate.yaml"
    path.write_text(export())
    with pytest.raises(CommandError, match=r"viewer lacks the permission"):
        call_command("flags_import", str(path), "--actor", "viewer")


# ---------------------------------------------------------------- version 2: typed flags, segments, labels
def test_the_plan_shows_typed_fields_and_segments_readably(estate, operator, tmp_path):
    doc = yaml.safe_load(export())
    doc["segments"]["beta-testers"] = {"conditions": [{"attribute": "subject", "op": "starts_with", "values": ["qa-"]}]}
    doc["segments"]["eu"]["conditions"][0]["values"] = ["eu", "uk"]
    doc["flags"]["model"]["variants"][1]["value"] = "gpt-xl"
    doc["flags"]["model"]["rules"] = [{"segment": "beta-testers", "serve": {"value": "gpt-qa"}}]
    doc["tenants"]["acme"]["overrides"]["model"]["variant"] = "large"
    doc["tenants"]["acme"]["owner_toggles"]["model"] = True
    doc["tenants"]["globex"]["labels"] = ["eu"]
    path = tmp_path / "typed.yaml"
    path.write_text(yaml.safe_dump(doc))

    lines = import_(path, "--dry-run")["diff"]
    assert lines[:2] == [
        "+ segment beta-testers",
        '~ segment eu: conditions [tenant.labels in ["eu"]] -> [tenant.labels in ["eu", "uk"]]',
    ]
    assert (
        '~ flag model: variants [small="gpt-s" 50%, large="gpt-l" 50%] -> [small="gpt-s" 50%, large="gpt-xl" 50%], '
        'rules [beta-users 50% -> large, eu by tenant -> "gpt-eu"] -> [beta-testers -> "gpt-qa"]'
    ) in lines
    assert '~ tenant globex: labels [] -> ["eu"]' in lines
    assert '~ override acme/model: variant "small" -> "large"' in lines
    assert '~ owner_toggle acme/model: variant "large" -> ""' in lines

    import_(path)
    model = Flag.objects.get(key="model")
    assert model.variants[1]["value"] == "gpt-xl" and model.rules[0]["segment"] == "beta-testers"
    assert Segment.objects.get(key="eu").conditions[0]["values"] == ["eu", "uk"]
    assert TenantFlag.objects.get(tenant__slug="acme", flag=model).variant == "large"
    assert Tenant.objects.get(slug="globex").labels == ["eu"]
    assert import_(path)["changes"] == 0


def test_prune_deletes_segments_after_the_flags_that_used_them(estate, operator, tmp_path):
    doc = yaml.safe_load(export())
    del doc["segments"]["beta-users"]
    path = tmp_path / "prune.yaml"
    path.write_text(yaml.safe_dump(doc))
    before = db_state()
    with pytest.raises(CommandError, match=r"segments: --prune would delete segment 'beta-users', .* model use"):
        import_(path, "--prune")
    assert db_state() == before

    doc["flags"]["model"]["rules"] = [r for r in doc["flags"]["model"]["rules"] if r["segment"] != "beta-users"]
    path.write_text(yaml.safe_dump(doc))
    summary = import_(path, "--prune")
    assert summary["diff"][-1] == "- segment beta-users" and summary["diff"][0].startswith("~ flag model: rules")
    assert list(Segment.objects.values_list("key", flat=True)) == ["eu"]
    assert AuditEvent.objects.filter(action="segment.delete", actor_user=operator).count() == 1
    # Without --prune a segment the file leaves out is kept.
    segment_create(key="spare", conditions=[], actor=None)
    assert import_(path)["changes"] == 0 and Segment.objects.filter(key="spare").exists()


def test_a_version_1_document_imports_as_version_2_with_defaults(estate, operator, tmp_path):
    path = tmp_path / "v1.yaml"
    path.write_text(
        "version: 1\n"
        "flags: {beta: {description: The beta editor, default: true}, fresh: {description: New}}\n"
        "plans: {}\n"
        "tenants:\n"
        "  acme: {name: Acme, plan: std, status: active, settings: {agent_type: goose},\n"
        "         overrides: {beta: {enabled: false}}, owner_toggles: {tools: true}}\n"
    )
    summary = import_(path)
    assert "+ flag fresh" in summary["diff"]
    assert "~ flag beta: default false -> true" in summary["diff"]
    # Read as version 2: what version 1 cannot say is at its default (acme's labels are cleared).
    assert '~ tenant acme: labels ["beta", "eu"] -> []' in summary["diff"]
    fresh = Flag.objects.get(key="fresh")
    assert (fresh.kind, fresh.variants, fresh.rules, fresh.requires_approval) == ("boolean", [], [], False)
    assert TenantFlag.objects.get(tenant__slug="acme", flag__key="beta").enabled is False
    # A version-1 file does not manage segments, even with --prune.
    pruned = import_(path, "--prune")["diff"]
    assert "- flag model: archived (kept for the audit trail and history)" in pruned
    assert not [line for line in pruned if "segment" in line] and Segment.objects.count() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nflags: {x: {kind: string}}\nplans: {}\ntenants: {}\n", r"flags\.x\.kind: a version 2 field"),
        ("version: 1\nsegments: {}\nflags: {}\nplans: {}\ntenants: {}\n", r"segments: a version 2 section"),
        (
            "version: 1\nflags: {x: {}}\nplans: {p: {name: P}}\ntenants: {t: {name: T, plan: p, labels: [a]}}\n",
            r"tenants\.t\.labels: a version 2 field",
        ),
    ],
)
def test_a_version_1_document_cannot_use_version_2_fields(operator, tmp_path, text, message):
    path = tmp_path / "v1.yaml"
    path.write_text(text)
    with pytest.raises(CommandError, match=message):
        import_(path)
    assert not Flag.objects.exists()
