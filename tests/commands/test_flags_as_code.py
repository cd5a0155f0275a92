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
from tenants.models import ApiKey, Flag, Plan, Tenant, TenantFlag
from tenants.services.flags import flag_owner_toggle, flag_set_override, flag_update
from tenants.services.tenants import tenant_suspend
from tests.commands.conftest import db_state, redis_state
from tests.tenants.factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

# Effects reach Redis after commit (the outbox), as in production: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return make_staff("oncall")


@pytest.fixture
def estate():
    """Plans, flags, tenants in every status, admin and owner overrides, rollouts."""
    make_flag("beta", default=False, description="The beta editor")
    make_flag("tools", default=True, tenant_editable=True)
    flag_update(flag=make_flag("legacy"), archived=True, actor=None)
    std = make_plan("std", daily_quota=1000, default_flags={"beta": True})
    pro = make_plan("pro", rate_limit_per_minute=600, burst=50)
    owner = make_user("acme-owner")
    acme = make_tenant("acme", plan=std, owner=owner, status="active", settings={"agent_type": "goose"})
    globex = make_tenant("globex", plan=pro, upstream_url="https://agents.globex.example")
    initech = make_tenant("initech", plan=pro, status="active")
    flag_set_override(tenant=globex, flag=Flag.objects.get(key="beta"), enabled=True, rollout_percent=30, actor=None)
    flag_owner_toggle(tenant=acme, flag=Flag.objects.get(key="tools"), enabled=False, actor=owner)
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
    for model in (TenantFlag, ApiKey, AuditEvent, Tenant, Plan, Flag):
        model.objects.all().delete()
    redis_client.flushdb()


def test_export_lists_everything_sorted_and_versioned(estate):
    doc = yaml.safe_load(export())
    assert doc["version"] == 1
    assert list(doc["flags"]) == ["beta", "legacy", "tools"]
    assert doc["flags"]["beta"] == {
        "description": "The beta editor",
        "default": False,
        "tenant_editable": False,
        "risky": False,
        "archived": False,
    }
    assert doc["plans"]["std"]["default_flags"] == {"beta": True} and doc["plans"]["std"]["daily_quota"] == 1000
    assert doc["tenants"]["globex"]["overrides"] == {"beta": {"enabled": True, "rollout_percent": 30}}
    assert doc["tenants"]["acme"]["owner_toggles"] == {"tools": False}
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
        (lambda d: d.update(version=2), r"version: this file is version 2; flags_import reads version 1"),
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
    assert json.loads(target.read_text())["version"] == 1
    assert str(target) in out.getvalue()


def test_import_needs_the_permissions_of_every_change(estate, tmp_path):
    make_user("viewer", is_staff=True)
    path = tmp_path / "estate.yaml"
    path.write_text(export())
    with pytest.raises(CommandError, match=r"viewer lacks the permission"):
        call_command("flags_import", str(path), "--actor", "viewer")
