"""Operator write commands: tenant_create, tenant_suspend/resume, flag_set, apikey_issue/revoke.

Each is a thin wrapper over the service the admin uses, so each change is audited with
the operator named by --actor, refused when that user lacks the admin's permission,
and --dry-run shows the change without keeping it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from tenants.models import ApiKey, Tenant, TenantFlag
from tests.commands.conftest import db_state, run_json
from tests.tenants.factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

# Effects reach Redis after commit (the outbox), as in production: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return make_staff("oncall")


def api(secret: str, path: str = "/api/v1/bootstrap"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def last_audit(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created_at")


# ---------------------------------------------------------------- the shared --actor contract
@pytest.mark.parametrize(
    "argv",
    [
        ["tenant_create", "--slug", "x", "--name", "X", "--plan", "std"],
        ["tenant_suspend", "--tenant", "acme", "--reason", "r"],
        ["tenant_resume", "--tenant", "acme"],
        ["tenant_activate", "--tenant", "acme"],
        ["tenant_offboard", "--tenant", "acme", "--reason", "r"],
        ["flag_set", "--flag", "beta", "--default", "on"],
        ["apikey_issue", "--tenant", "acme", "--name", "ci"],
        ["apikey_revoke", "--prefix", "abcd1234"],
    ],
)
def test_every_write_names_a_real_staff_actor_with_the_permission(argv):
    make_plan("std")
    make_tenant("acme")
    make_flag("beta")
    with pytest.raises(CommandError, match="--actor"):
        call_command(*argv)
    with pytest.raises(CommandError, match="no active staff user 'ghost'"):
        call_command(*argv, "--actor", "ghost")
    make_user("visitor")  # not staff
    with pytest.raises(CommandError, match="no active staff user 'visitor'"):
        call_command(*argv, "--actor", "visitor")
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    with pytest.raises(CommandError, match=r"viewer lacks the permission tenants\.\w+"):
        call_command(*argv, "--actor", "viewer")
    assert not AuditEvent.objects.filter(actor_user__username__in=["viewer", "visitor"]).exists()


# ---------------------------------------------------------------- tenant_create
def test_tenant_create_is_audited_as_the_operator_and_serves(operator):
    make_plan("std")
    summary = run_json("tenant_create", "--slug", "initech", "--name", "Initech", "--plan", "std", "--actor", "oncall")
    assert summary["tenant"] == "initech" and summary["status"] == "trial" and summary["created"] == 1
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.plan.code == "std"
    event = last_audit("tenant.create")
    assert event.actor_user == operator and event.tenant == tenant


def test_tenant_create_takes_status_settings_and_upstream(operator):
    make_plan("std")
    run_json(
        "tenant_create",
        "--slug", "initech", "--name", "Initech", "--plan", "std", "--status", "active",
        "--tenant-settings", '{"agent_type": "goose"}', "--upstream-url", "https://agents.initech.example",
        "--actor", "oncall",
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.status == "active" and tenant.settings["agent_type"] == "goose"
    assert tenant.upstream_url == "https://agents.initech.example"


def test_tenant_create_dry_run_keeps_nothing(operator):
    make_plan("std")
    before = db_state()
    summary = run_json(
        "tenant_create", "--slug", "initech", "--name", "Initech", "--plan", "std", "--actor", "oncall", "--dry-run"
    )
    assert summary["dry_run"] is True and summary["created"] == 1
    assert db_state() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plan", "gold"], r"Unknown plan 'gold'.*--plan.*std"),
        (["--plan", "std", "--tenant-settings", "{not json"], r"--tenant-settings is not a JSON object"),
        (["--plan", "std", "--tenant-settings", "[1]"], r"--tenant-settings is not a JSON object"),
        (["--plan", "std", "--status", "suspended"], r"invalid choice: 'suspended'"),
    ],
)
def test_tenant_create_bad_input_names_the_option(operator, extra, message):
    make_plan("std")
    with pytest.raises(CommandError, match=message):
        call_command("tenant_create", "--slug", "initech", "--name", "Initech", *extra, "--actor", "oncall")
    assert not Tenant.objects.filter(slug="initech").exists()


def test_tenant_create_service_errors_name_the_field(operator):
    make_plan("std")
    make_tenant("acme")
    with pytest.raises(CommandError, match=r"slug"):
        call_command("tenant_create", "--slug", "acme", "--name", "Again", "--plan", "std", "--actor", "oncall")
    with pytest.raises(CommandError, match=r"slug"):
        call_command("tenant_create", "--slug", "no spaces", "--name", "Bad", "--plan", "std", "--actor", "oncall")


# ---------------------------------------------------------------- tenant_suspend / tenant_resume
def test_suspend_then_resume_stops_and_restores_the_service_api(operator):
    tenant = make_tenant("acme", status="active")
    _, secret = make_key(tenant)
    assert api(secret).status_code == 200
    summary = run_json("tenant_suspend", "--tenant", "acme", "--reason", "unpaid invoice", "--actor", "oncall")
    assert summary == {**summary, "tenant": "acme", "status": "suspended", "changed": 1}
    assert api(secret).status_code == 403
    assert last_audit("tenant.suspend").reason == "unpaid invoice"
    assert last_audit("tenant.suspend").actor_user == operator

    summary = run_json("tenant_resume", "--tenant", "acme", "--actor", "oncall")
    assert summary["status"] == "active" and summary["changed"] == 1
    assert api(secret).status_code == 200


def test_suspend_needs_a_reason_and_a_known_tenant(operator):
    make_tenant("acme")
    with pytest.raises(CommandError, match="--reason"):
        call_command("tenant_suspend", "--tenant", "acme", "--reason", "  ", "--actor", "oncall")
    with pytest.raises(CommandError, match=r"Unknown tenant 'acme2'.*Did you mean: acme"):
        call_command("tenant_suspend", "--tenant", "acme2", "--reason", "r", "--actor", "oncall")
    assert Tenant.objects.get(slug="acme").status == "trial"


def test_suspend_dry_run_and_repeated_suspend(operator):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    before = db_state()
    assert (
        run_json("tenant_suspend", "--tenant", "acme", "--reason", "r", "--actor", "oncall", "--dry-run")["changed"]
        == 1
    )
    assert db_state() == before and api(secret).status_code == 200
    run_json("tenant_suspend", "--tenant", "acme", "--reason", "r", "--actor", "oncall")
    assert run_json("tenant_suspend", "--tenant", "acme", "--reason", "r", "--actor", "oncall")["changed"] == 0


# ---------------------------------------------------------------- tenant_activate / tenant_offboard
def test_activate_a_trial_and_refuse_a_suspended_tenant(operator):
    make_tenant("acme")
    paused = make_tenant("globex")
    run_json("tenant_suspend", "--tenant", "globex", "--reason", "unpaid", "--actor", "oncall")
    summary = run_json("tenant_activate", "--tenant", "acme", "--actor", "oncall")
    assert summary == {**summary, "tenant": "acme", "status": "active", "changed": 1}
    assert last_audit("tenant.activate").actor_user == operator
    assert run_json("tenant_activate", "--tenant", "acme", "--actor", "oncall")["changed"] == 0
    with pytest.raises(CommandError, match="resume it first"):
        call_command("tenant_activate", "--tenant", "globex", "--actor", "oncall")
    assert Tenant.objects.get(pk=paused.pk).status == "suspended"


def test_offboard_is_final_erases_credentials_and_refuses_the_keys(operator):
    from tenants.services.tenants import tenant_set_upstream_credentials

    tenant = make_tenant("acme", status="active")
    tenant_set_upstream_credentials(tenant=tenant, secret="tok-1", actor=None)
    _, secret = make_key(tenant)
    with pytest.raises(CommandError, match="--reason"):
        call_command("tenant_offboard", "--tenant", "acme", "--reason", " ", "--actor", "oncall")
    summary = run_json("tenant_offboard", "--tenant", "acme", "--reason", "contract ended", "--actor", "oncall")
    assert summary == {**summary, "status": "deleted", "changed": 1}
    assert api(secret).status_code == 403
    assert Tenant.objects.get().upstream_credentials == ""
    assert last_audit("tenant.offboard").reason == "contract ended"
    assert run_json("tenant_offboard", "--tenant", "acme", "--reason", "again", "--actor", "oncall")["changed"] == 0
    resumed = run_json("tenant_resume", "--tenant", "acme", "--actor", "oncall")
    assert (resumed["status"], resumed["changed"]) == ("deleted", 0)
    with pytest.raises(CommandError, match="offboarded"):
        call_command("tenant_activate", "--tenant", "acme", "--actor", "oncall")


# ---------------------------------------------------------------- flag_set
def test_flag_set_default_changes_every_tenants_answer(operator):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    make_flag("beta", default=False)
    assert api(secret, "/api/v1/flags/beta").json()["enabled"] is False
    summary = run_json("flag_set", "--flag", "beta", "--default", "on", "--actor", "oncall")
    assert summary["flag"] == "beta" and summary["default"] is True and summary["changed"] == 1
    assert api(secret, "/api/v1/flags/beta").json()["enabled"] is True
    assert last_audit("flag.update").actor_user == operator
    assert run_json("flag_set", "--flag", "beta", "--default", "on", "--actor", "oncall")["changed"] == 0


def test_flag_set_override_rollout_and_clear(operator):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    make_flag("beta", default=True)
    summary = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--off", "--actor", "oncall")
    assert summary["tenant"] == "acme" and summary["enabled"] is False and summary["changed"] == 1
    body = api(secret, "/api/v1/flags/beta").json()
    assert body["enabled"] is False and body["reason"] == "admin_override"

    run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--on", "--rollout", "30", "--actor", "oncall")
    override = TenantFlag.objects.get(tenant=tenant, flag__key="beta")
    assert override.enabled is True and override.rollout_percent == 30 and override.source == "admin"

    summary = run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--clear", "--actor", "oncall")
    assert summary["changed"] == 1 and not TenantFlag.objects.filter(tenant=tenant).exists()
    assert api(secret, "/api/v1/flags/beta").json()["reason"] == "default"
    assert run_json("flag_set", "--flag", "beta", "--tenant", "acme", "--clear", "--actor", "oncall")["changed"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flag", "betta", "--default", "on"], r"Unknown flag 'betta'.*Did you mean: beta"),
        (["--flag", "beta"], r"--default.*--on.*--off.*--clear"),
        (["--flag", "beta", "--default", "maybe"], r"invalid choice: 'maybe'"),
        (["--flag", "beta", "--on"], r"--on needs --tenant"),
        (["--flag", "beta", "--tenant", "acme", "--default", "on"], r"--default .*not.*--tenant"),
        (["--flag", "beta", "--tenant", "acme", "--on", "--rollout", "101"], r"--rollout.*0 to 100"),
        (["--flag", "beta", "--tenant", "acme", "--clear", "--rollout", "5"], r"--rollout.*--clear"),
    ],
)
def test_flag_set_bad_input_names_the_option(operator, argv, message):
    make_tenant("acme")
    make_flag("beta")
    before = db_state()
    with pytest.raises(CommandError, match=message):
        call_command("flag_set", *argv, "--actor", "oncall")
    assert db_state() == before


MODELS = [{"key": "small", "value": "gpt-s", "weight": 0}, {"key": "large", "value": "gpt-l", "weight": 0}]


def test_flag_set_serves_a_variant_or_a_value_of_a_typed_flag(operator):
    tenant = make_tenant("acme")
    _, secret = make_key(tenant)
    make_flag("model", kind="string", default=True, default_value="gpt-m", variants=MODELS)
    on = ["flag_set", "--flag", "model", "--tenant", "acme", "--on", "--actor", "oncall"]

    summary = run_json(*on, "--variant", "large", "--owner-variants", "small,large")
    assert summary == {**summary, "variant": "large", "owner_variants": ["small", "large"], "changed": 1}
    body = api(secret, "/api/v1/flags/model").json()
    assert (body["variant"], body["value"], body["reason"]) == ("large", "gpt-l", "admin_override")
    assert last_audit("flag.set_override").after["variant"] == "large"
    assert run_json(*on, "--variant", "large")["changed"] == 0

    summary = run_json(*on, "--value", '"gpt-custom"', "--rollout", "100")
    assert summary["value"] == "gpt-custom" and summary["changed"] == 1
    override = TenantFlag.objects.get(tenant=tenant, flag__key="model")
    # The owners' bounds are kept when --owner-variants is left out.
    assert (override.variant, override.value, override.owner_variants) == ("", "gpt-custom", ["small", "large"])
    assert api(secret, "/api/v1/flags/model").json()["value"] == "gpt-custom"
    run_json(*on, "--owner-variants", "")
    assert TenantFlag.objects.get(pk=override.pk).owner_variants == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flag", "model", "--on", "--variant", "huge"], r"no variant 'huge' on flag model\. \(--variant\)"),
        (["--flag", "model", "--on", "--value", "5"], r"a string flag's value is a string\. \(--value\)"),
        (["--flag", "model", "--on", "--value", "gpt-4"], r"--value 'gpt-4' is not JSON .*quote a string"),
        (["--flag", "model", "--on", "--value", "null"], r"--value null serves nothing"),
        (["--flag", "model", "--on", "--owner-variants", "small,gold"], r"'gold' .*\(--owner-variants\)"),
        (["--flag", "model", "--off", "--variant", "small"], r"--variant applies to --on only, not to --off"),
        (["--flag", "model", "--on", "--variant", "small", "--value", '"x"'], r"not allowed with argument --variant"),
        (["--flag", "beta", "--on", "--value", "true"], r"--value is for typed flags; beta is a boolean flag"),
        (["--flag", "beta", "--on", "--owner-variants", "a"], r"--owner-variants is for typed flags"),
    ],
)
def test_flag_set_typed_errors_name_the_option(operator, argv, message):
    make_tenant("acme")
    make_flag("beta")
    make_flag("model", kind="string", default_value="gpt-m", variants=MODELS)
    before = db_state()
    with pytest.raises(CommandError, match=message):
        call_command("flag_set", *argv, "--tenant", "acme", "--actor", "oncall")
    assert db_state() == before


# ---------------------------------------------------------------- apikey_issue / apikey_revoke
def test_apikey_issue_shows_the_secret_once_and_it_works(operator):
    make_tenant("acme")
    out = StringIO()
    call_command(
        "apikey_issue", "--tenant", "acme", "--name", "ci", "--scopes", "config:read", "--expires", "30d",
        "--actor", "oncall", "--json", stdout=out,
    )  # fmt: skip
    summary = json.loads(out.getvalue())
    secret = summary["secret"]
    key = ApiKey.objects.get(prefix=summary["prefix"])
    assert secret.startswith(f"aak_{key.prefix}_") and key.scopes == ["config:read"] and key.created_by == operator
    assert timedelta(days=29) < key.expires_at - timezone.now() <= timedelta(days=30)
    assert api(secret).status_code == 200
    assert secret not in json.dumps(last_audit("apikey.issue").after)


def test_apikey_issue_text_mode_warns_the_secret_is_shown_once(operator):
    make_tenant("acme")
    out = StringIO()
    call_command("apikey_issue", "--tenant", "acme", "--name", "ci", "--actor", "oncall", stdout=out)
    text = out.getvalue()
    assert "aak_" in text and "shown once" in text


def test_apikey_issue_dry_run_prints_no_secret(operator):
    make_tenant("acme")
    summary = run_json("apikey_issue", "--tenant", "acme", "--name", "ci", "--actor", "oncall", "--dry-run")
    assert "secret" not in summary and not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scopes", "config:read,admin"], r"scopes"),
        (["--expires", "soon"], r"--expires 'soon'.*30d"),
        (["--expires", "0s"], r"--expires"),
        (["--name", ""], r"name"),
    ],
)
def test_apikey_issue_bad_input(operator, argv, message):
    make_tenant("acme")
    args = ["--name", "ci", *argv] if "--name" not in argv else argv
    with pytest.raises(CommandError, match=message):
        call_command("apikey_issue", "--tenant", "acme", *args, "--actor", "oncall")
    assert not ApiKey.objects.exists()


def test_apikey_revoke_refuses_on_the_next_request(operator):
    tenant = make_tenant("acme")
    key, secret = make_key(tenant)
    assert api(secret).status_code == 200
    summary = run_json("apikey_revoke", "--prefix", key.prefix, "--actor", "oncall")
    assert summary["prefix"] == key.prefix and summary["tenant"] == "acme" and summary["changed"] == 1
    assert api(secret).status_code == 401
    assert last_audit("apikey.revoke").actor_user == operator
    assert run_json("apikey_revoke", "--prefix", key.prefix, "--actor", "oncall")["changed"] == 0


def test_apikey_revoke_unknown_prefix_and_dry_run(operator):
    tenant = make_tenant("acme")
    key, secret = make_key(tenant)
    with pytest.raises(CommandError, match=r"No API key with prefix 'ffffffff'"):
        call_command("apikey_revoke", "--prefix", "ffffffff", "--actor", "oncall")
    assert run_json("apikey_revoke", "--prefix", key.prefix, "--actor", "oncall", "--dry-run")["changed"] == 1
    assert api(secret).status_code == 200
