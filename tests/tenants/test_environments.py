"""Environments: per-environment layers and API keys, the plan's bound, promotion with a reviewed diff."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from audit.models import AuditAction, AuditEvent
from tenants.api import gateway
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.keys import document_key, route_key
from tenants.models import PRODUCTION, Environment, OwnerToggle, TenantFlag
from tenants.selectors import flags_evaluate, flags_explain, tenant_environments
from tenants.services.apikeys import apikey_hash, apikey_revoke
from tenants.services.environments import (
    OVERRIDES,
    OWNER_TOGGLES,
    EnvironmentChanged,
    environment_create,
    environment_delete,
    environment_diff,
    environment_promote,
)
from tenants.services.flags import flag_clear_override, flag_owner_toggle, flag_set_override

from .factories import make_flag, make_key, make_plan, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def acme(owner):
    return make_tenant("acme", owner=owner)


def bootstrap(secret):
    response = Client().get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200, response.content
    return response.json()


# ------------------------------------------------------------------ environments
def test_every_tenant_has_production_and_may_add_others_within_its_plan(acme):
    assert tenant_environments(acme) == [PRODUCTION]
    environment_create(tenant=acme, key="staging", name="Staging", actor=None)
    environment_create(tenant=acme, key="dev", actor=None)
    assert tenant_environments(acme) == [PRODUCTION, "dev", "staging"]
    # The default plan allows 3, production included.
    with pytest.raises(TenantsError, match=r"allows 3 environments .* has 3") as exc:
        environment_create(tenant=acme, key="qa", actor=None)
    assert exc.value.field == "key"
    assert not Environment.objects.filter(key="qa").exists()


def test_a_plan_of_one_environment_allows_production_only():
    tenant = make_tenant("solo", plan=make_plan("solo", max_environments=1))
    with pytest.raises(TenantsError, match="allows 1 environment "):
        environment_create(tenant=tenant, key="staging", actor=None)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("production", "has production already"),
        ("Staging", "a-z, 0-9"),
        ("-x", "starting with a letter"),
        ("x" * 33, "1-32 characters"),
        ("", "1-32 characters"),
        ("a b", "a-z"),
    ],
)
def test_a_bad_environment_key_is_refused_naming_the_field(acme, key, message):
    with pytest.raises(TenantsError, match=message) as exc:
        environment_create(tenant=acme, key=key, actor=None)
    assert exc.value.field == "key"


def test_a_duplicate_environment_is_refused(acme):
    environment_create(tenant=acme, key="staging", actor=None)
    with pytest.raises(TenantsError, match="already") as exc:
        environment_create(tenant=acme, key="staging", actor=None)
    assert exc.value.field == "key"


def test_the_database_refuses_a_production_row_and_a_second_override_per_environment(acme):
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.create(tenant=acme, key=PRODUCTION)
    flag = make_flag("beta")
    TenantFlag.objects.create(tenant=acme, flag=flag, enabled=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        TenantFlag.objects.create(tenant=acme, flag=flag, enabled=False)


def test_creating_and_deleting_an_environment_is_audited(acme, owner):
    environment_create(tenant=acme, key="staging", name="Staging", actor=owner)
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None, environment="staging")
    environment_delete(tenant=acme, key="staging", actor=owner)
    created, deleted = AuditEvent.objects.filter(action__startswith="environment.").order_by("pk")
    assert (created.action, created.object_id, created.after) == (
        AuditAction.ENVIRONMENT_CREATE,
        "staging",
        {"key": "staging", "name": "Staging"},
    )
    assert deleted.action == AuditAction.ENVIRONMENT_DELETE and deleted.before["overrides"] == ["beta"]
    assert created.actor_user == owner and created.tenant_id == acme.pk
    # Its layers went with it; production's stay.
    assert not TenantFlag.objects.filter(environment="staging").exists()


def test_an_environment_read_by_a_live_key_cannot_be_deleted(acme):
    environment_create(tenant=acme, key="staging", actor=None)
    api_key, _ = make_key(acme, name="ci", environment="staging")
    with pytest.raises(TenantsError, match=r"revoke its API keys first .*ci") as exc:
        environment_delete(tenant=acme, key="staging", actor=None)
    assert exc.value.field == "environment"
    apikey_revoke(api_key=api_key, actor=None)
    environment_delete(tenant=acme, key="staging", actor=None)
    assert tenant_environments(acme) == [PRODUCTION]


def test_the_platforms_overrides_go_with_an_environment_only_for_who_may_remove_them(acme):
    environment_create(tenant=acme, key="staging", actor=None)
    flag_set_override(tenant=acme, flag=make_flag("beta"), enabled=False, actor=None, environment="staging")
    with pytest.raises(TenantsError, match=r"the platform team has set overrides in staging \(beta\)") as exc:
        environment_delete(tenant=acme, key="staging", actor=None, may_remove_overrides=False)
    assert exc.value.field == "environment" and TenantFlag.objects.filter(environment="staging").exists()
    guarded = make_flag("guarded")
    flag_set_override(tenant=acme, flag=guarded, enabled=True, actor=None, environment="staging")
    guarded.__class__.objects.filter(pk=guarded.pk).update(requires_approval=True)
    with pytest.raises(TenantsError, match=r"overrides of flags that require approval \(guarded\)"):
        environment_delete(tenant=acme, key="staging", actor=None)
    assert tenant_environments(acme) == [PRODUCTION, "staging"]


@pytest.mark.parametrize("key", ["nul\x00", "x" * 10_000, 7, None])
def test_a_malformed_environment_never_reaches_the_database(acme, key):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries, pytest.raises(TenantsError, match="has no environment") as exc:
        environment_delete(tenant=acme, key=key, actor=None)
    assert exc.value.field == "environment" and len(exc.value.message) < 200
    # Only the list of what the tenant has: no lookup by the malformed key (PostgreSQL refuses a NUL).
    assert all("nul" not in q["sql"] and "xxxx" not in q["sql"] for q in queries.captured_queries)


def test_production_and_unknown_environments_cannot_be_deleted(acme):
    with pytest.raises(TenantsError, match="production cannot be deleted"):
        environment_delete(tenant=acme, key=PRODUCTION, actor=None)
    with pytest.raises(TenantsError, match="no environment 'qa'"):
        environment_delete(tenant=acme, key="qa", actor=None)


def test_layers_and_keys_name_an_existing_environment(acme, owner):
    beta = make_flag("beta", tenant_editable=True)
    with pytest.raises(TenantsError, match=r"no environment 'staging' .*production") as exc:
        flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None, environment="staging")
    assert exc.value.field == "environment"
    with pytest.raises(TenantsError, match="no environment"):
        flag_owner_toggle(tenant=acme, flag=beta, enabled=True, actor=owner, environment="staging")
    with pytest.raises(TenantsError, match="no environment"):
        make_key(acme, environment="staging")
    # Another tenant's environment is not this tenant's.
    environment_create(tenant=make_tenant("globex"), key="staging", actor=None)
    with pytest.raises(TenantsError, match="no environment"):
        flag_clear_override(tenant=acme, flag=beta, actor=None, environment="staging")


# ------------------------------------------------------------------ evaluation
def test_an_override_in_one_environment_leaves_the_others_alone(acme, owner):
    environment_create(tenant=acme, key="staging", actor=None)
    beta = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=acme, flag=beta, enabled=True, rollout_percent=30, actor=None, environment="staging")
    staging = flags_evaluate(acme, environment="staging")["beta"]
    production = flags_evaluate(acme)["beta"]
    assert (staging.reason, production.reason) == ("rollout", "default")
    assert production.enabled is False
    # An owner's toggle in production does not touch staging's override either.
    flag_owner_toggle(tenant=acme, flag=beta, enabled=False, actor=owner)
    assert flags_evaluate(acme)["beta"].reason == "owner_toggle"
    assert flags_evaluate(acme, environment="staging")["beta"].reason == "rollout"
    explained = {row.key: row for row in flags_explain(acme, environment="staging")}
    assert explained["beta"].rollout_percent == 30 and explained["beta"].owner_enabled is None


def test_an_api_key_reads_its_own_environment(acme, redis_client):
    environment_create(tenant=acme, key="staging", actor=None)
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None, environment="staging")
    _, production_secret = make_key(acme)
    staging_key, staging_secret = make_key(acme, name="staging replica", environment="staging")
    for _ in range(2):  # a cold fill, then the warm path
        staged = bootstrap(staging_secret)
        assert staged["environment"] == "staging" and staged["flags"]["beta"]["enabled"] is True
        produced = bootstrap(production_secret)
        assert produced["environment"] == PRODUCTION and produced["flags"]["beta"]["enabled"] is False
    single = Client().get("/api/v1/flags/beta", HTTP_AUTHORIZATION=f"Bearer {staging_secret}")
    assert single.json()["enabled"] is True and single.json()["reason"] == "admin_override"
    evaluated = Client().post(
        "/api/v1/evaluate",
        data={"keys": ["beta"], "context": {}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {staging_secret}",
    )
    assert evaluated.status_code == 200 and evaluated.json()["flags"]["beta"]["enabled"] is True
    # Production's document keeps the name it had before environments; staging's has its own.
    assert redis_client.exists(document_key("acme", acme.pk), document_key("acme", acme.pk, "staging")) == 2
    assert redis_client.get(route_key(staging_key.secret_hash)) == f"ok acme {acme.pk} staging"


def test_a_route_written_before_environments_reads_production(acme, redis_client):
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None)
    api_key, secret = make_key(acme)
    bootstrap(secret)
    assert redis_client.get(route_key(api_key.secret_hash)) == f"ok acme {acme.pk}"
    gateway.routes.forget()  # a worker that has only the stored (old-format) route
    assert bootstrap(secret)["flags"]["beta"]["enabled"] is True
    assert gateway.routes.get(apikey_hash(secret)) == ("acme", str(acme.pk), PRODUCTION)


def test_a_change_in_one_environment_reaches_its_keys_after_commit(
    acme, redis_client, django_capture_on_commit_callbacks
):
    environment_create(tenant=acme, key="staging", actor=None)
    beta = make_flag("beta")
    _, secret = make_key(acme, environment="staging")
    assert bootstrap(secret)["flags"]["beta"]["enabled"] is False
    with django_capture_on_commit_callbacks(execute=True):
        flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None, environment="staging")
    assert bootstrap(secret)["flags"]["beta"]["enabled"] is True


def test_existing_rows_migrate_to_production_with_the_same_answers(migrate):
    old = migrate([("tenants", "0011_flag_asks")])
    plan = old.get_model("tenants", "Plan").objects.create(code="p", name="P")
    tenant = old.get_model("tenants", "Tenant").objects.create(slug="acme", name="Acme", plan=plan)
    flag = old.get_model("tenants", "Flag").objects.create(key="beta", tenant_editable=True)
    old.get_model("tenants", "TenantFlag").objects.create(tenant=tenant, flag=flag, enabled=True, rollout_percent=40)
    old.get_model("tenants", "OwnerToggle").objects.create(tenant=tenant, flag=flag, enabled=False)
    old.get_model("tenants", "ApiKey").objects.create(tenant=tenant, name="k", prefix="abcd1234", secret_hash="0" * 64)
    new = migrate()
    assert set(new.get_model("tenants", "TenantFlag").objects.values_list("environment", flat=True)) == {PRODUCTION}
    assert set(new.get_model("tenants", "OwnerToggle").objects.values_list("environment", flat=True)) == {PRODUCTION}
    assert set(new.get_model("tenants", "ApiKey").objects.values_list("environment", flat=True)) == {PRODUCTION}
    assert new.get_model("tenants", "Plan").objects.get(code="p").max_environments == 3
    from tenants.models import Tenant

    result = flags_evaluate(Tenant.objects.get(slug="acme"))["beta"]
    assert (result.enabled, result.reason) == (False, "owner_toggle")


# ------------------------------------------------------------------ promotion
@pytest.fixture
def staged(acme, owner):
    """acme with staging differing from production in every way a promotion handles."""
    environment_create(tenant=acme, key="staging", actor=None)
    flags = {key: make_flag(key, tenant_editable=True) for key in ("added", "changed", "removed", "same")}
    flag_set_override(tenant=acme, flag=flags["added"], enabled=True, actor=None, environment="staging")
    flag_set_override(tenant=acme, flag=flags["changed"], enabled=True, rollout_percent=10, actor=None)
    flag_set_override(
        tenant=acme, flag=flags["changed"], enabled=True, rollout_percent=50, actor=None, environment="staging"
    )
    flag_set_override(tenant=acme, flag=flags["removed"], enabled=True, actor=None)
    for environment in (PRODUCTION, "staging"):
        flag_set_override(tenant=acme, flag=flags["same"], enabled=False, actor=None, environment=environment)
    flag_owner_toggle(tenant=acme, flag=flags["added"], enabled=False, actor=owner, environment="staging")
    return acme


def test_the_diff_shows_every_layer_that_would_change(staged):
    diff = environment_diff(tenant=staged, source="staging", target=PRODUCTION)
    rows = [(c.flag, c.layer, c.verb, c.before, c.after) for c in diff.changes]
    assert rows == [
        ("added", OVERRIDES, "add", None, {"enabled": True, "rollout_percent": 100}),
        (
            "changed",
            OVERRIDES,
            "change",
            {"enabled": True, "rollout_percent": 10},
            {"enabled": True, "rollout_percent": 50},
        ),
        ("removed", OVERRIDES, "remove", {"enabled": True, "rollout_percent": 100}, None),
        ("added", OWNER_TOGGLES, "add", None, {"enabled": False}),
    ]
    only_toggles = environment_diff(tenant=staged, source="staging", target=PRODUCTION, layers=[OWNER_TOGGLES])
    assert [c.layer for c in only_toggles.changes] == [OWNER_TOGGLES]
    assert only_toggles.digest != diff.digest


def test_promotion_makes_the_target_equal_the_source_in_one_audited_action(staged, owner):
    before = {key: flags_evaluate(staged, environment="staging")[key] for key in ("added", "changed", "removed")}
    diff = environment_diff(tenant=staged, source="staging", target=PRODUCTION)
    environment_promote(tenant=staged, source="staging", target=PRODUCTION, digest=diff.digest, actor=owner)
    assert environment_diff(tenant=staged, source="staging", target=PRODUCTION).changes == ()
    after = flags_evaluate(staged)
    assert {key: (after[key].enabled, after[key].reason) for key in before} == {
        key: (result.enabled, result.reason) for key, result in before.items()
    }
    (event,) = AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_PROMOTE)
    assert (
        event.actor_user == owner and event.object_id == PRODUCTION and event.reason == "promoted staging to production"
    )
    assert event.before["overrides.removed"] == {"enabled": True, "rollout_percent": 100}
    assert event.after["overrides.removed"] is None and event.after["owner_toggles.added"] == {"enabled": False}
    # The source is untouched.
    assert TenantFlag.objects.filter(tenant=staged, environment="staging").count() == 3


def test_a_promotion_whose_diff_changed_since_it_was_shown_is_refused(staged):
    shown = environment_diff(tenant=staged, source="staging", target=PRODUCTION)
    flag_set_override(
        tenant=staged,
        flag=TenantFlag.objects.get(environment="staging", flag__key="changed").flag,
        enabled=False,
        actor=None,
        environment="staging",
    )
    with pytest.raises(EnvironmentChanged) as exc:
        environment_promote(tenant=staged, source="staging", target=PRODUCTION, digest=shown.digest, actor=None)
    assert exc.value.field == "digest"
    assert TenantFlag.objects.get(environment=PRODUCTION, flag__key="changed").rollout_percent == 10


def test_a_promotion_touching_a_flag_that_requires_approval_needs_it(staged):
    TenantFlag.objects.get(environment="staging", flag__key="changed").flag.__class__.objects.filter(
        key="changed"
    ).update(requires_approval=True)
    diff = environment_diff(tenant=staged, source="staging", target=PRODUCTION)
    with pytest.raises(ApprovalRequired, match="changed requires approval") as exc:
        environment_promote(tenant=staged, source="staging", target=PRODUCTION, digest=diff.digest, actor=None)
    assert exc.value.operation == AuditAction.ENVIRONMENT_PROMOTE
    assert exc.value.params == {
        "tenant": "acme",
        "source": "staging",
        "target": PRODUCTION,
        "layers": [OVERRIDES, OWNER_TOGGLES],
        "digest": diff.digest,
    }
    assert TenantFlag.objects.get(environment=PRODUCTION, flag__key="changed").rollout_percent == 10
    environment_promote(
        tenant=staged, source="staging", target=PRODUCTION, digest=diff.digest, actor=None, approved=True
    )
    assert TenantFlag.objects.get(environment=PRODUCTION, flag__key="changed").rollout_percent == 50


def test_promotion_may_copy_owner_toggles_only(staged):
    diff = environment_diff(tenant=staged, source="staging", target=PRODUCTION, layers=[OWNER_TOGGLES])
    environment_promote(
        tenant=staged,
        source="staging",
        target=PRODUCTION,
        digest=diff.digest,
        actor=None,
        layers=[OWNER_TOGGLES],
    )
    assert OwnerToggle.objects.filter(tenant=staged, environment=PRODUCTION, flag__key="added").exists()
    assert TenantFlag.objects.get(environment=PRODUCTION, flag__key="changed").rollout_percent == 10


@pytest.mark.parametrize(
    ("source", "target", "layers", "field"),
    [
        ("staging", "staging", None, "target"),
        ("qa", PRODUCTION, None, "source"),
        ("staging", "qa", None, "target"),
        ("staging", PRODUCTION, ["rules"], "layers"),
    ],
)
def test_a_bad_promotion_names_its_field(staged, source, target, layers, field):
    with pytest.raises(TenantsError) as exc:
        environment_diff(tenant=staged, source=source, target=target, layers=layers)
    assert exc.value.field == field


def test_an_empty_promotion_changes_nothing_and_records_nothing(acme):
    environment_create(tenant=acme, key="staging", actor=None)
    diff = environment_diff(tenant=acme, source="staging", target=PRODUCTION)
    assert diff.changes == ()
    version = acme.cache_version
    environment_promote(tenant=acme, source="staging", target=PRODUCTION, digest=diff.digest, actor=None)
    acme.refresh_from_db()
    assert acme.cache_version == version
    assert not AuditEvent.objects.filter(action=AuditAction.ENVIRONMENT_PROMOTE).exists()


def test_a_promotion_reaches_the_targets_keys(staged, redis_client, django_capture_on_commit_callbacks):
    _, secret = make_key(staged)
    assert bootstrap(secret)["flags"]["added"]["enabled"] is False
    diff = environment_diff(tenant=staged, source="staging", target=PRODUCTION)
    with django_capture_on_commit_callbacks(execute=True):
        environment_promote(tenant=staged, source="staging", target=PRODUCTION, digest=diff.digest, actor=None)
    flags = bootstrap(secret)["flags"]
    # "added": staging's override on, but staging's owner toggle (promoted too) turns it off.
    assert (flags["added"]["enabled"], flags["added"]["reason"]) == (False, "owner_toggle")
    assert flags["changed"]["rollout_percent"] == 50 and flags["removed"]["reason"] == "default"


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_pass_the_plans_bound():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (DATABASE_URL=postgres://...)")
    import threading

    tenant = make_tenant("racy", plan=make_plan("two", max_environments=2))
    barrier, outcomes = threading.Barrier(4), []

    def add(key):
        from django.db import connection as thread_connection

        barrier.wait()
        try:
            environment_create(tenant=tenant, key=key, actor=None)
            outcomes.append(key)
        except TenantsError:
            outcomes.append("refused")
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=add, args=(f"env{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("refused") == 3
    assert len(tenant_environments(tenant)) == 2
