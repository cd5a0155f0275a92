"""Environments from a shell: environment_create/delete, flag_set and apikey_issue --environment, and
environment_promote, which shows the diff and applies it only with --yes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from changes.models import ChangeRequest
from tenants.models import ApiKey, Environment, TenantFlag
from tenants.services.environments import environment_create
from tenants.services.flags import flag_set_override
from tests.commands.conftest import db_state, run_json
from tests.tenants.factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

# Effects reach Redis after commit (the outbox), as in production: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return make_staff("oncall")


@pytest.fixture
def acme():
    return make_tenant("acme", plan=make_plan("std"))


def staging(tenant):
    return environment_create(tenant=tenant, key="staging", name="Staging", actor=None)


def answer(secret: str, key: str = "beta") -> dict:
    return Client().get(f"/api/v1/flags/{key}", HTTP_AUTHORIZATION=f"Bearer {secret}").json()


def text(*argv: str) -> str:
    out = StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


# ------------------------------------------------------------------ environment_create / delete
def test_environment_create_and_delete_are_audited_and_idempotent(operator, acme):
    summary = run_json("environment_create", "--tenant", "acme", "--key", "staging", "--name", "Staging",
                       "--actor", "oncall")  # fmt: skip
    assert (summary["tenant"], summary["environment"], summary["changed"]) == ("acme", "staging", 1)
    assert Environment.objects.get(tenant=acme, key="staging").name == "Staging"
    assert AuditEvent.objects.get(action="environment.create").actor_user == operator
    again = run_json("environment_create", "--tenant", "acme", "--key", "staging", "--actor", "oncall")
    assert again["changed"] == 0 and AuditEvent.objects.filter(action="environment.create").count() == 1
    deleted = run_json("environment_delete", "--tenant", "acme", "--key", "staging", "--actor", "oncall")
    assert deleted["changed"] == 1 and not Environment.objects.exists()
    assert AuditEvent.objects.get(action="environment.delete").actor_user == operator


def test_environment_create_dry_run_keeps_nothing(operator, acme):
    before = db_state()
    summary = run_json("environment_create", "--tenant", "acme", "--key", "qa", "--actor", "oncall", "--dry-run")
    assert summary["changed"] == 1 and summary["dry_run"] is True
    assert db_state() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--key", "Staging"], r"key: use 1-32 characters.*\(--key\)"),
        (["--key", "production"], r"every tenant has production already.*\(--key\)"),
        (["--key", "qa", "--name", "x" * 101], r"name: at most 100.*\(--name\)"),
    ],
)
def test_environment_create_bad_input_names_the_option(operator, acme, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("environment_create", "--tenant", "acme", *argv, "--actor", "oncall")
    assert not Environment.objects.exists()


def test_environment_create_over_the_plans_bound_says_so(operator, acme):
    staging(acme)
    run_json("environment_create", "--tenant", "acme", "--key", "qa", "--actor", "oncall")
    with pytest.raises(CommandError, match=r"allows 3 environments.*\(--key\)"):
        call_command("environment_create", "--tenant", "acme", "--key", "dev", "--actor", "oncall")


def test_environment_delete_refusals(operator, acme):
    staging(acme)
    make_key(acme, environment="staging", name="stage-replica")
    with pytest.raises(CommandError, match=r"revoke its API keys first.*stage-replica"):
        call_command("environment_delete", "--tenant", "acme", "--key", "staging", "--actor", "oncall")
    with pytest.raises(CommandError, match=r"production cannot be deleted"):
        call_command("environment_delete", "--tenant", "acme", "--key", "production", "--actor", "oncall")
    with pytest.raises(CommandError, match=r"Unknown environment 'stagin'.*Did you mean: staging"):
        call_command("environment_delete", "--tenant", "acme", "--key", "stagin", "--actor", "oncall")
    assert Environment.objects.count() == 1


# ------------------------------------------------------------------ flag_set / apikey_issue --environment
def test_flag_set_sets_and_clears_an_override_in_an_environment(operator, acme):
    staging(acme)
    make_flag("beta")
    _, production = make_key(acme)
    _, stage = make_key(acme, environment="staging", name="stage")
    summary = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--environment", "staging", "--on",
                       "--actor", "oncall")  # fmt: skip
    assert summary["environment"] == "staging" and summary["changed"] == 1
    assert answer(stage)["reason"] == "admin_override" and answer(production)["reason"] == "default"
    assert TenantFlag.objects.get().environment == "staging"
    again = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--environment", "staging", "--on",
                     "--actor", "oncall")  # fmt: skip
    assert again["changed"] == 0
    # production is the default, and has no override of its own to clear.
    cleared = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--clear", "--actor", "oncall")
    assert cleared["changed"] == 0 and cleared["environment"] == "production"
    cleared = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--environment", "staging", "--clear",
                       "--actor", "oncall")  # fmt: skip
    assert cleared["changed"] == 1 and not TenantFlag.objects.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenant", "acme", "--environment", "stagin", "--on"],
         r"Unknown environment 'stagin' of acme for --environment\. Did you mean: staging\?.*environment_create"),
        (["--default", "on", "--environment", "staging"], r"--environment.*--tenant"),
    ],
)  # fmt: skip
def test_flag_set_environment_refusals_name_the_fix(operator, acme, argv, message):
    staging(acme)
    make_flag("beta")
    before = db_state()
    with pytest.raises(CommandError, match=message):
        call_command("flag_set", "--flag", "beta", *argv, "--actor", "oncall")
    assert db_state() == before


def test_apikey_issue_in_an_environment_reads_its_document(operator, acme):
    staging(acme)
    summary = run_json("apikey_issue", "--tenant", "acme", "--name", "stage", "--environment", "staging",
                       "--actor", "oncall")  # fmt: skip
    assert summary["environment"] == "staging"
    assert ApiKey.objects.get(prefix=summary["prefix"]).environment == "staging"
    body = Client().get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {summary['secret']}").json()
    assert body["environment"] == "staging"
    plain = run_json("apikey_issue", "--tenant", "acme", "--name", "prod", "--actor", "oncall")
    assert plain["environment"] == "production"
    with pytest.raises(CommandError, match=r"Unknown environment 'qa' of acme for --environment"):
        call_command("apikey_issue", "--tenant", "acme", "--name", "x", "--environment", "qa", "--actor", "oncall")
    assert ApiKey.objects.count() == 2


# ------------------------------------------------------------------ environment_promote
def _staged(acme):
    staging(acme)
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, rollout_percent=30, actor=None, environment="staging")
    return beta


def test_promote_without_yes_prints_the_diff_and_changes_nothing(operator, acme):
    _staged(acme)
    before = db_state()
    out = text("environment_promote", "acme", "staging", "production", "--actor", "oncall")
    assert '+ overrides beta: {"enabled": true, "rollout_percent": 30}' in out
    assert "re-run with --yes" in out
    assert db_state() == before
    summary = run_json("environment_promote", "acme", "staging", "production", "--actor", "oncall")
    assert summary["applied"] is False and summary["changed"] == 0 and len(summary["changes"]) == 1
    assert summary["changes"][0]["verb"] == "add" and summary["digest"]
    assert db_state() == before


def test_promote_with_yes_applies_it_as_the_actor(operator, acme):
    _staged(acme)
    _, secret = make_key(acme)
    summary = run_json("environment_promote", "acme", "staging", "production", "--yes", "--actor", "oncall")
    assert summary["applied"] is True and summary["changed"] == 1
    assert TenantFlag.objects.get(environment="production").rollout_percent == 30
    assert answer(secret)["reason"] in ("rollout", "admin_override")
    event = AuditEvent.objects.get(action="environment.promote")
    assert event.actor_user == operator and "promoted staging to production" in event.reason
    again = run_json("environment_promote", "acme", "staging", "production", "--yes", "--actor", "oncall")
    assert again["applied"] is False and again["changes"] == []
    assert "nothing to promote" in text("environment_promote", "acme", "staging", "production", "--actor", "oncall")


def test_promote_dry_run_with_yes_keeps_nothing(operator, acme):
    _staged(acme)
    before = db_state()
    summary = run_json("environment_promote", "acme", "staging", "production", "--yes", "--dry-run",
                       "--actor", "oncall")  # fmt: skip
    assert summary["changed"] == 1 and summary["dry_run"] is True
    assert db_state() == before


def test_promote_only_the_chosen_layers(operator, acme):
    _staged(acme)
    summary = run_json("environment_promote", "acme", "staging", "production", "--layers", "owner_toggles",
                       "--yes", "--actor", "oncall")  # fmt: skip
    assert summary["layers"] == ["owner_toggles"] and summary["changes"] == []
    assert not TenantFlag.objects.filter(environment="production").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["acme", "stagin", "production"], r"Unknown environment 'stagin' of acme for SOURCE\. Did you mean: staging"),
        (["acme", "staging", "prod"], r"Unknown environment 'prod' of acme for TARGET"),
        (["acme", "staging", "staging"], r"target: pick an environment other than the source"),
        (["acme", "staging", "production", "--layers", "flags"], r"layers: unknown flags.*\(--layers\)"),
        (["acme"], r"the following arguments are required: SOURCE, TARGET"),
        (["acmee", "staging", "production"], r"Unknown tenant 'acmee'"),
    ],
)
def test_promote_refusals_name_the_fix(operator, acme, argv, message):
    _staged(acme)
    before = db_state()
    with pytest.raises(CommandError, match=message):
        call_command("environment_promote", *argv, "--yes", "--actor", "oncall")
    assert db_state() == before


def test_promote_of_a_flag_requiring_approval_is_refused_naming_request(operator, acme):
    _staged(acme)
    gated = make_flag("gated", requires_approval=True)
    flag_set_override(tenant=acme, flag=gated, enabled=True, actor=None, environment="staging", approved=True)
    before = db_state()
    with pytest.raises(CommandError, match=r"gated requires approval.*--request") as refused:
        call_command("environment_promote", "acme", "staging", "production", "--yes", "--actor", "oncall")
    assert refused.value.returncode == 1
    assert db_state() == before
    summary = run_json("environment_promote", "acme", "staging", "production", "--yes", "--request",
                       "--actor", "oncall")  # fmt: skip
    change = ChangeRequest.objects.get(pk=summary["change_request"])
    assert change.operation == "environment.promote" and summary["change_request_state"] == "pending_approval"
    assert change.author == operator and summary["applied"] is False and summary["changed"] == 0
    assert not TenantFlag.objects.filter(environment="production").exists()


def test_promote_needs_change_flag_for_overrides_only(operator, acme):
    _staged(acme)
    tenant_admin = make_user("tenant-admin", is_staff=True)
    tenant_admin.user_permissions.set(Permission.objects.filter(codename="change_tenant"))
    summary = run_json("environment_promote", "acme", "staging", "production", "--layers", "owner_toggles",
                       "--yes", "--actor", "tenant-admin")  # fmt: skip
    assert summary["changed"] == 0
    with pytest.raises(CommandError, match=r"tenant-admin lacks the permission tenants\.change_flag"):
        call_command("environment_promote", "acme", "staging", "production", "--yes", "--actor", "tenant-admin")
    assert not TenantFlag.objects.filter(environment="production").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["environment_create", "--tenant", "acme", "--key", "qa"],
        ["environment_delete", "--tenant", "acme", "--key", "staging"],
        ["environment_promote", "acme", "staging", "production"],
    ],
)
def test_every_environment_command_names_a_real_staff_actor(acme, argv):
    staging(acme)
    with pytest.raises(CommandError, match="--actor"):
        call_command(*argv)
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    with pytest.raises(CommandError, match=r"viewer lacks the permission tenants\.\w+"):
        call_command(*argv, "--actor", "viewer")
    assert Environment.objects.count() == 1
    assert not AuditEvent.objects.filter(actor_user__username="viewer").exists()


def test_the_promote_json_summary_is_one_document(operator, acme):
    _staged(acme)
    out = StringIO()
    call_command("environment_promote", "acme", "staging", "production", "--json", "--actor", "oncall", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["command"] == "environment_promote" and summary["source"] == "staging"
    assert (summary["target"], summary["layers"]) == ("production", ["overrides", "owner_toggles"])
    assert summary["tenant"] == "acme" and summary["next"] == "re-run with --yes to apply these changes"
