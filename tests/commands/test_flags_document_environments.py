"""The flags document keeps each tenant's environments besides production: export, plan, apply, prune."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from tenants.models import PRODUCTION, ApiKey, Environment, OwnerToggle, Tenant, TenantFlag
from tenants.selectors import flags_evaluate
from tenants.services.apikeys import apikey_revoke
from tenants.services.environments import environment_create
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tenants.services.flagsdoc import DocumentError, flags_document_parse
from tests.commands.conftest import db_state
from tests.tenants.factories import make_flag, make_key, make_plan, make_staff, make_tenant, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    return make_staff("oncall")


@pytest.fixture
def estate():
    """acme has production and staging (overrides and an owner's choice in each); globex has production only."""
    beta, tools = make_flag("beta"), make_flag("tools", default=True, tenant_editable=True)
    make_flag("new_editor")
    plan = make_plan("std")
    owner = make_user("acme-owner")
    acme = make_tenant("acme", plan=plan, owner=owner, status="active")
    globex = make_tenant("globex", plan=plan)
    environment_create(tenant=acme, key="staging", name="Staging", actor=None)
    flag_set_override(tenant=acme, flag=beta, enabled=False, actor=None)
    flag_set_override(tenant=acme, flag=beta, enabled=True, rollout_percent=100, environment="staging", actor=None)
    flag_owner_toggle(tenant=acme, flag=tools, enabled=False, environment="staging", actor=owner)
    flag_set_override(tenant=globex, flag=beta, enabled=True, rollout_percent=30, actor=None)
    return {"acme": acme, "globex": globex}


def export() -> dict:
    out = StringIO()
    call_command("flags_export", stdout=out)
    return yaml.safe_load(out.getvalue())


def import_(path, *args: str) -> dict:
    out = StringIO()
    call_command("flags_import", str(path), "--actor", "oncall", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def write(tmp_path, doc: dict, name: str = "estate.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def answers(tenant, environment: str) -> dict:
    """Return what each flag answers the tenant in `environment`, without versions (a re-import moves them)."""
    return {
        key: (flag.enabled, flag.reason, flag.value, flag.variant)
        for key, flag in flags_evaluate(tenant, environment=environment).items()
    }


def layers(slug: str, environment: str) -> tuple[dict, dict]:
    overrides = TenantFlag.objects.filter(tenant__slug=slug, environment=environment)
    toggles = OwnerToggle.objects.filter(tenant__slug=slug, environment=environment)
    return (
        {o.flag.key: (o.enabled, o.rollout_percent) for o in overrides.select_related("flag")},
        {t.flag.key: t.enabled for t in toggles.select_related("flag")},
    )


# ------------------------------------------------------------------ export
def test_export_writes_environments_only_for_tenants_that_have_any(estate):
    doc = export()
    acme, globex = doc["tenants"]["acme"], doc["tenants"]["globex"]
    assert doc["version"] == 2
    assert "environments" not in globex, "a tenant with production only reads as before"
    # Production stays where it always was; staging's rows are under its environment, not mixed in.
    assert acme["overrides"] == {"beta": {"enabled": False, "rollout_percent": 100}}
    assert acme["owner_toggles"] == {}
    assert acme["environments"] == {
        "staging": {
            "name": "Staging",
            "overrides": {"beta": {"enabled": True, "rollout_percent": 100}},
            "owner_toggles": {"tools": False},
        }
    }
    assert list(acme)[-1] == "environments"


def test_round_trip_on_a_fresh_database_reproduces_every_environment(estate, operator, redis_client, tmp_path):
    doc = export()
    staging_before = answers(estate["acme"], "staging")
    path = write(tmp_path, doc)
    for model in (TenantFlag, OwnerToggle, ApiKey, AuditEvent, Environment, Tenant):
        model.objects.all().delete()
    redis_client.flushdb()

    summary = import_(path)
    assert summary["applied"] is True
    assert "+ environment tenants.acme.environments.staging" in summary["diff"]
    assert export() == doc
    assert layers("acme", "staging") == ({"beta": (True, 100)}, {"tools": False})
    assert layers("acme", PRODUCTION) == ({"beta": (False, 100)}, {})
    acme = Tenant.objects.get(slug="acme")
    assert answers(acme, "staging") == staging_before
    created = AuditEvent.objects.get(action="environment.create")
    assert created.actor_label == "oncall" and created.object_id == "staging"
    assert import_(path)["changes"] == 0


def test_a_plans_environment_bound_round_trips(estate, operator, redis_client, tmp_path):
    from tenants.models import Plan
    from tenants.services.plans import plan_update

    plan_update(plan=Plan.objects.get(code="std"), actor=None, max_environments=5)
    for key in ("dev", "qa", "uat"):
        environment_create(tenant=estate["acme"], key=key, actor=None)
    doc = export()
    assert doc["plans"]["std"]["max_environments"] == 5
    path = write(tmp_path, doc)
    for model in (TenantFlag, OwnerToggle, ApiKey, AuditEvent, Environment, Tenant, Plan):
        model.objects.all().delete()
    assert import_(path)["applied"] is True
    assert export() == doc and Plan.objects.get(code="std").max_environments == 5
    # A plan at the default bound exports as before.
    plan_update(plan=Plan.objects.get(code="std"), actor=None, max_environments=8)
    make_plan("small")
    assert "max_environments" not in export()["plans"]["small"]
    bad = {**doc, "plans": {"std": {**doc["plans"]["std"], "max_environments": 0}}}
    with pytest.raises(DocumentError, match=r"plans.std.max_environments: must be a whole number >= 1"):
        flags_document_parse(bad)


# ------------------------------------------------------------------ plan and apply
def test_the_plan_names_each_environment_change_by_its_path(estate, operator, tmp_path):
    doc = export()
    staging = doc["tenants"]["acme"]["environments"]["staging"]
    staging["overrides"]["beta"]["rollout_percent"] = 40
    staging["overrides"]["new_editor"] = {"enabled": True}
    del staging["owner_toggles"]["tools"]
    doc["tenants"]["acme"]["environments"]["qa"] = {"overrides": {"beta": {"enabled": False}}}
    doc["tenants"]["globex"]["environments"] = {"preview": {"name": "Preview", "owner_toggles": {"tools": True}}}
    path = write(tmp_path, doc)
    before = db_state()

    lines = import_(path, "--dry-run", "--prune")["diff"]
    # Environments are created first, then every layer is set (the file's order: YAML sorts keys).
    assert lines == [
        "+ environment tenants.acme.environments.qa",
        "+ environment tenants.globex.environments.preview",
        "+ override tenants.acme.environments.qa.overrides.beta",
        "~ override tenants.acme.environments.staging.overrides.beta: rollout_percent 100 -> 40",
        "+ override tenants.acme.environments.staging.overrides.new_editor",
        "- owner_toggle tenants.acme.environments.staging.owner_toggles.tools",
        "+ owner_toggle tenants.globex.environments.preview.owner_toggles.tools",
    ]
    assert db_state() == before

    summary = import_(path, "--prune")
    assert summary["changes"] == len(lines)
    assert layers("acme", "staging") == ({"beta": (True, 40), "new_editor": (True, 100)}, {})
    assert layers("acme", "qa") == ({"beta": (False, 100)}, {})
    assert layers("globex", "preview") == ({}, {"tools": True})
    assert layers("acme", PRODUCTION) == ({"beta": (False, 100)}, {}), "production is untouched"
    assert Environment.objects.get(tenant__slug="globex", key="preview").name == "Preview"
    set_in_staging = AuditEvent.objects.filter(action="flag.set_override", actor_user=operator)
    assert {event.after.get("environment") for event in set_in_staging} == {"staging", "qa"}
    assert import_(path, "--prune")["changes"] == 0


def test_without_prune_environments_and_layers_the_document_lacks_stay(estate, operator, tmp_path):
    doc = export()
    del doc["tenants"]["acme"]["environments"]
    assert import_(write(tmp_path, doc))["changes"] == 0
    assert Environment.objects.filter(key="staging").exists()


def test_prune_deletes_an_environment_the_document_lacks(estate, operator, tmp_path):
    doc = export()
    del doc["tenants"]["acme"]["environments"]
    summary = import_(write(tmp_path, doc), "--prune")
    assert summary["diff"] == ["- environment tenants.acme.environments.staging"]
    assert not Environment.objects.exists()
    assert layers("acme", "staging") == ({}, {})
    assert AuditEvent.objects.filter(action="environment.delete", actor_user=operator).count() == 1


def test_prune_refuses_an_environment_live_api_keys_read(estate, operator, tmp_path):
    api_key, _ = make_key(estate["acme"], name="ci", environment="staging")
    doc = export()
    del doc["tenants"]["acme"]["environments"]
    path = write(tmp_path, doc)
    before = db_state()
    with pytest.raises(CommandError, match=r"tenants\.acme\.environments\.staging: .*1 live API key.*ci.*revoke"):
        import_(path, "--prune")
    assert db_state() == before
    apikey_revoke(api_key=api_key, actor=None)
    assert import_(path, "--prune")["changes"] == 1


def test_an_environment_beyond_the_plan_is_refused_naming_its_path(estate, operator, tmp_path):
    doc = export()
    doc["tenants"]["acme"]["environments"].update({"qa": {}, "preview": {}})
    before = db_state()
    # preview fits (production, preview, staging); qa would be a fourth.
    with pytest.raises(CommandError, match=r"tenants\.acme\.environments\.qa: plan “std” allows 3"):
        import_(write(tmp_path, doc))
    assert db_state() == before


def test_an_environment_name_the_database_has_otherwise_is_refused(estate, operator, tmp_path):
    doc = export()
    doc["tenants"]["acme"]["environments"]["staging"]["name"] = "Pre-production"
    with pytest.raises(CommandError, match=r"tenants\.acme\.environments\.staging\.name: .*“Staging”"):
        import_(write(tmp_path, doc))


# ------------------------------------------------------------------ parse
def minimal(environments) -> dict:
    return {
        "version": 2,
        "segments": {},
        "flags": {"beta": {}},
        "plans": {"std": {"name": "Standard"}},
        "tenants": {"acme": {"name": "Acme", "plan": "std", "environments": environments}},
    }


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ([], "tenants.acme.environments: must be a mapping"),
        ({"production": {}}, "tenants.acme.environments.production: production is the tenant's own overrides"),
        ({"Staging": {}}, "tenants.acme.environments.Staging: an environment key is 1-32 characters"),
        ({"staging": {"colour": "red"}}, "tenants.acme.environments.staging: unknown field 'colour'"),
        ({"staging": {"name": 7}}, "tenants.acme.environments.staging.name: must be a string"),
        ({"staging": {"overrides": {"nope": {"enabled": True}}}}, "tenants.acme.environments.staging.overrides.nope"),
        (
            {"staging": {"overrides": {"beta": {"enabled": True, "rollout_percent": 120}}}},
            "tenants.acme.environments.staging.overrides.beta.rollout_percent: a whole number from 0 to 100",
        ),
        (
            {"staging": {"owner_toggles": {"beta": "yes"}}},
            "tenants.acme.environments.staging.owner_toggles.beta: must be true or false",
        ),
    ],
)
def test_bad_environments_name_the_path(environments, message):
    with pytest.raises(DocumentError) as excinfo:
        flags_document_parse(minimal(environments))
    assert excinfo.value.message.startswith(message), excinfo.value.message


def test_a_version_1_document_cannot_have_environments():
    doc = minimal({"staging": {}})
    doc["version"] = 1
    del doc["segments"]
    with pytest.raises(DocumentError, match=r"^tenants\.acme\.environments: a version 2 field"):
        flags_document_parse(doc)


def test_environments_default_to_none_and_fill_their_layers():
    parsed = flags_document_parse(minimal({"staging": {"overrides": {"beta": {"enabled": True}}}}))
    assert parsed["tenants"]["acme"]["environments"] == {
        "staging": {
            "name": "",
            "overrides": {
                "beta": {"enabled": True, "rollout_percent": 100, "variant": "", "value": None, "owner_variants": []}
            },
            "owner_toggles": {},
        }
    }
    plain = minimal({})
    del plain["tenants"]["acme"]["environments"]
    assert flags_document_parse(plain)["tenants"]["acme"]["environments"] == {}
