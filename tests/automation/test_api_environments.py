"""Admin API, a tenant's environments: list, create, delete, diff and promote; overrides, owner toggles and
API keys in an environment. Every refusal is a problem naming the field."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from tenants.models import Environment, Flag, Membership, OwnerToggle, Plan, TenantFlag
from tenants.services.apikeys import apikey_revoke
from tenants.services.environments import environment_create
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tenants.services.memberships import membership_add
from tests.automation.conftest import AdminApi, problem
from tests.automation.factories import grant, make_operator, make_token
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(plan):
    return make_tenant("acme", plan=plan)


def staging(tenant):
    return environment_create(tenant=tenant, key="staging", name="Staging", actor=None)


# ------------------------------------------------------------------------ list, get, create
def test_environments_list_production_first_with_counts(api, acme):
    staging(acme)
    owner = make_user("owner")
    membership_add(tenant=acme, user=owner, role=Membership.Role.OWNER, actor=None)
    beta = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=acme, flag=beta, enabled=True, actor=None, environment="staging")
    flag_owner_toggle(tenant=acme, flag=beta, enabled=False, actor=owner, environment="staging")
    make_key(acme, environment="staging")
    make_key(acme)
    revoked, _ = make_key(acme, environment="staging", name="old")
    apikey_revoke(api_key=revoked, actor=None)
    listed = api.get("/tenants/acme/environments")
    assert listed.status_code == 200, listed.content
    items = listed.json()["items"]
    assert [e["key"] for e in items] == ["production", "staging"]
    production, stage = items
    assert production["counts"] == {"overrides": 0, "owner_toggles": 0, "live_api_keys": 1}
    assert stage["counts"] == {"overrides": 1, "owner_toggles": 1, "live_api_keys": 1}
    assert stage["name"] == "Staging" and stage["created_at"] and production["created_at"]
    assert listed.json()["max_environments"] == 3
    got = api.get("/tenants/acme/environments/staging")
    assert got.status_code == 200 and got.json() == stage and got["ETag"]
    assert api.get("/tenants/acme/environments/production").json() == production


def test_environment_create_is_audited_as_the_token_user(api, acme):
    created = api.post("/tenants/acme/environments", {"key": "staging", "name": "Staging"})
    assert created.status_code == 201, created.content
    assert created["Location"] == "/api/v1/admin/tenants/acme/environments/staging"
    assert created.json()["key"] == "staging" and created.json()["counts"]["overrides"] == 0
    assert Environment.objects.filter(tenant=acme, key="staging").exists()
    event = AuditEvent.objects.get(action="environment.create")
    assert event.actor_user.username == "robot" and "[via staff token" in event.reason


def test_environment_create_replays_with_idempotency_key(api, acme):
    first = api.post("/tenants/acme/environments", {"key": "qa"}, Idempotency_Key="env-1")
    again = api.post("/tenants/acme/environments", {"key": "qa"}, Idempotency_Key="env-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again["Idempotency-Replayed"] == "true" and Environment.objects.count() == 1


@pytest.mark.parametrize("key", ["Staging", "9lives", "-x", "a" * 33, "production", ""])
def test_a_bad_environment_key_is_refused_naming_key(api, acme, key):
    response = api.post("/tenants/acme/environments", {"key": key})
    assert response.status_code in (409, 422)
    assert response.json()["field"] == "key", response.json()
    assert not Environment.objects.exists()


def test_a_duplicate_and_one_over_the_plans_bound_are_refused_naming_key(api, acme):
    staging(acme)
    problem(api.post("/tenants/acme/environments", {"key": "staging"}), 409, "conflict", "key")
    assert api.post("/tenants/acme/environments", {"key": "qa"}).status_code == 201
    over = problem(api.post("/tenants/acme/environments", {"key": "dev"}), 422, "invalid_request", "key")
    assert "allows 3 environments" in over["detail"]
    problem(api.post("/tenants/nope/environments", {"key": "qa"}), 404, "not_found", "slug")
    problem(api.get("/tenants/acme/environments/nope"), 404, "not_found", "key")


# ----------------------------------------------------------------------------------- delete
def test_environment_delete_needs_if_match_and_removes_its_layers(api, acme):
    staging(acme)
    flag_set_override(tenant=acme, flag=make_flag("beta"), enabled=True, actor=None, environment="staging")
    etag = api.get("/tenants/acme/environments/staging")["ETag"]
    problem(api.delete("/tenants/acme/environments/staging"), 428, "precondition_required")
    problem(api.delete("/tenants/acme/environments/staging", If_Match='"stale"'), 412, "precondition_failed")
    assert api.delete("/tenants/acme/environments/staging", If_Match=etag).status_code == 204
    assert not Environment.objects.exists() and not TenantFlag.objects.exists()
    assert AuditEvent.objects.filter(action="environment.delete").count() == 1


def test_deleting_an_environment_that_holds_overrides_needs_flags_write(acme):
    staging(acme)
    flag_set_override(tenant=acme, flag=make_flag("beta"), enabled=True, actor=None, environment="staging")
    tenants_writer = make_operator("tw", scopes=("tenants:read", "tenants:write"))
    writer = AdminApi(make_token(tenants_writer, scopes=("tenants:read", "tenants:write"))[1])
    etag = writer.get("/tenants/acme/environments/staging")["ETag"]
    problem(writer.delete("/tenants/acme/environments/staging", If_Match=etag), 403, "insufficient_scope")
    assert Environment.objects.filter(key="staging").exists() and TenantFlag.objects.exists()


def test_environment_delete_is_refused_while_live_keys_read_it_and_for_production(api, acme):
    staging(acme)
    api_key, _ = make_key(acme, environment="staging", name="stage-replica")
    refused = problem(
        api.delete("/tenants/acme/environments/staging", If_Match="*"), 409, "environment_in_use", "environment"
    )
    assert refused["api_keys"] == [api_key.prefix] and "stage-replica" in refused["detail"]
    problem(api.delete("/tenants/acme/environments/production", If_Match="*"), 422, "invalid_request", "environment")
    problem(api.delete("/tenants/acme/environments/nope", If_Match="*"), 404, "not_found", "key")
    assert Environment.objects.count() == 1


# ------------------------------------------------------------------------ overrides per environment
def test_overrides_and_owner_toggles_act_in_an_environment(api, acme):
    staging(acme)
    make_flag("beta", tenant_editable=True)
    _, production_secret = make_key(acme)
    _, staging_secret = make_key(acme, environment="staging", name="stage")

    def answer(secret):
        return Client().get("/api/v1/flags/beta", HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    created = api.put("/tenants/acme/overrides/beta?environment=staging", {"enabled": True})
    assert created.status_code == 201, created.content
    assert created.json()["environment"] == "staging"
    assert answer(staging_secret)["reason"] == "admin_override" and answer(production_secret)["reason"] == "default"
    problem(api.get("/tenants/acme/overrides/beta"), 404, "not_found", "key")  # production has none
    assert api.get("/tenants/acme/overrides/beta?environment=staging").json()["enabled"] is True
    api.put("/tenants/acme/overrides/beta", {"enabled": False})
    listed = api.get("/tenants/acme/overrides").json()["items"]
    assert [(o["flag"], o["environment"]) for o in listed] == [("beta", "production"), ("beta", "staging")]
    only = api.get("/tenants/acme/overrides?environment=staging").json()["items"]
    assert [o["environment"] for o in only] == ["staging"]
    replaced = api.put(
        "/tenants/acme/overrides/beta?environment=staging", {"enabled": True, "rollout_percent": 50}, If_Match="*"
    )
    assert replaced.status_code == 200 and replaced.json()["rollout_percent"] == 50
    assert TenantFlag.objects.get(environment="production").enabled is False
    etag = api.get("/tenants/acme/overrides/beta?environment=staging")["ETag"]
    assert api.delete("/tenants/acme/overrides/beta?environment=staging", If_Match=etag).status_code == 204
    assert list(TenantFlag.objects.values_list("environment", flat=True)) == ["production"]


def test_owner_toggles_list_get_and_reset_in_an_environment(api, acme):
    staging(acme)
    owner = make_user("owner")
    membership_add(tenant=acme, user=owner, role=Membership.Role.OWNER, actor=None)
    beta, gamma = make_flag("beta", tenant_editable=True), make_flag("gamma", tenant_editable=True)
    for environment in ("production", "staging"):
        flag_owner_toggle(tenant=acme, flag=beta, enabled=False, actor=owner, environment=environment)
    flag_owner_toggle(tenant=acme, flag=gamma, enabled=True, actor=owner, environment="staging")
    every = api.get("/tenants/acme/owner-toggles?limit=2").json()
    assert [(t["flag"], t["environment"]) for t in every["items"]] == [("beta", "production"), ("beta", "staging")]
    rest = api.get(f"/tenants/acme/owner-toggles?limit=2&cursor={every['next_cursor']}").json()
    assert [(t["flag"], t["environment"]) for t in rest["items"]] == [("gamma", "staging")]
    assert rest["next_cursor"] is None
    staged = api.get("/tenants/acme/owner-toggles?environment=staging").json()["items"]
    assert [t["flag"] for t in staged] == ["beta", "gamma"]
    problem(api.get("/tenants/acme/owner-toggles/gamma"), 404, "not_found", "flag_key")
    got = api.get("/tenants/acme/owner-toggles/gamma?environment=staging")
    assert got.status_code == 200 and got.json()["environment"] == "staging"
    assert api.delete("/tenants/acme/owner-toggles/beta?environment=staging", If_Match=got["ETag"]).status_code == 412
    etag = api.get("/tenants/acme/owner-toggles/beta?environment=staging")["ETag"]
    assert api.delete("/tenants/acme/owner-toggles/beta?environment=staging", If_Match=etag).status_code == 204
    assert sorted(OwnerToggle.objects.values_list("flag__key", "environment")) == [
        ("beta", "production"),
        ("gamma", "staging"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/tenants/acme/overrides?environment=nope", None),
        ("GET", "/tenants/acme/overrides/beta?environment=nope", None),
        ("PUT", "/tenants/acme/overrides/beta?environment=nope", {"enabled": True}),
        ("DELETE", "/tenants/acme/overrides/beta?environment=nope", None),
        ("GET", "/tenants/acme/owner-toggles?environment=nope", None),
        ("GET", "/tenants/acme/owner-toggles/beta?environment=nope", None),
        ("DELETE", "/tenants/acme/owner-toggles/beta?environment=nope", None),
        ("GET", "/tenants/acme/api-keys?environment=nope", None),
    ],
)
def test_an_unknown_environment_is_a_problem_naming_environment(api, acme, method, path, body):
    make_flag("beta")
    refused = problem(api.call(method, path, body, If_Match="*"), 404, "not_found", "environment")
    assert "production" in refused["detail"]  # it names the environments there are
    assert not TenantFlag.objects.exists()


# ------------------------------------------------------------------------------------ API keys
def test_api_keys_are_issued_in_an_environment_and_listed_with_it(api, acme):
    staging(acme)
    issued = api.post("/tenants/acme/api-keys", {"name": "stage", "environment": "staging"})
    assert issued.status_code == 201, issued.content
    assert issued.json()["environment"] == "staging"
    plain = api.post("/tenants/acme/api-keys", {"name": "prod"})
    assert plain.json()["environment"] == "production"
    listed = api.get("/tenants/acme/api-keys").json()["items"]
    assert sorted(k["environment"] for k in listed) == ["production", "staging"]
    only = api.get("/tenants/acme/api-keys?environment=staging").json()["items"]
    assert [k["name"] for k in only] == ["stage"]
    body = Client().get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {issued.json()['secret']}").json()
    assert body["environment"] == "staging"
    got = api.get(f"/tenants/acme/api-keys/{issued.json()['prefix']}").json()
    assert got["environment"] == "staging"
    problem(
        api.post("/tenants/acme/api-keys", {"name": "x", "environment": "nope"}), 422, "invalid_request", "environment"
    )


# ------------------------------------------------------------------------------- diff and promote
def _staged_override(acme):
    staging(acme)
    beta = make_flag("beta")
    flag_set_override(tenant=acme, flag=beta, enabled=True, rollout_percent=30, actor=None, environment="staging")
    return beta


def test_diff_then_promote_with_its_digest_changes_production(api, acme):
    _staged_override(acme)
    _, secret = make_key(acme)
    diff = api.get("/tenants/acme/environments/production/promote?from=staging")
    assert diff.status_code == 200, diff.content
    body = diff.json()
    assert (body["source"], body["target"], body["layers"]) == ("staging", "production", ["overrides", "owner_toggles"])
    assert body["changes"] == [
        {
            "flag": "beta",
            "layer": "overrides",
            "verb": "add",
            "before": None,
            "after": {"enabled": True, "rollout_percent": 30},
        }
    ]
    promoted = api.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": body["digest"]})
    assert promoted.status_code == 200, promoted.content
    assert promoted.json()["changes"] == body["changes"] and promoted.json()["applied"] is True
    assert TenantFlag.objects.get(environment="production").rollout_percent == 30
    answer = Client().get("/api/v1/flags/beta", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert answer["reason"] in ("rollout", "admin_override")
    event = AuditEvent.objects.get(action="environment.promote")
    assert event.actor_user.username == "robot" and "promoted staging to production" in event.reason
    again = api.get("/tenants/acme/environments/production/promote?from=staging").json()
    assert again["changes"] == []
    nothing = api.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": again["digest"]})
    assert nothing.status_code == 200 and nothing.json()["applied"] is False
    assert AuditEvent.objects.filter(action="environment.promote").count() == 1


def test_promote_only_the_chosen_layers(api, acme):
    _staged_override(acme)
    diff = api.get("/tenants/acme/environments/production/promote?from=staging&layers=owner_toggles").json()
    assert diff["layers"] == ["owner_toggles"] and diff["changes"] == []
    both = api.get("/tenants/acme/environments/production/promote?from=staging&layers=overrides,owner_toggles")
    assert len(both.json()["changes"]) == 1
    promoted = api.post(
        "/tenants/acme/environments/production/promote",
        {"from": "staging", "digest": diff["digest"], "layers": ["owner_toggles"]},
    )
    assert promoted.status_code == 200 and not TenantFlag.objects.filter(environment="production").exists()


def test_a_promotion_whose_diff_changed_is_refused_naming_digest(api, acme):
    beta = _staged_override(acme)
    digest = api.get("/tenants/acme/environments/production/promote?from=staging").json()["digest"]
    flag_set_override(tenant=acme, flag=beta, enabled=False, actor=None, environment="staging")
    refused = problem(
        api.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": digest}),
        409,
        "environment_changed",
        "digest",
    )
    assert refused["digest"] != digest  # the new diff's, to review
    assert not TenantFlag.objects.filter(environment="production").exists()


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/tenants/acme/environments/production/promote?from=nope", None, 422, "from"),
        ("/tenants/acme/environments/nope/promote?from=staging", None, 404, "target"),
        ("/tenants/acme/environments/production/promote?from=production", None, 422, "target"),
        ("/tenants/acme/environments/production/promote?from=staging&layers=flags", None, 422, "layers"),
        ("/tenants/acme/environments/production/promote", None, 400, "from"),
        ("/tenants/acme/environments/production/promote", {"from": "nope", "digest": "x"}, 422, "from"),
        ("/tenants/acme/environments/production/promote", {"from": "staging"}, 422, "digest"),
        (
            "/tenants/acme/environments/production/promote",
            {"from": "staging", "digest": "x", "layers": ["x"]},
            422,
            "layers",
        ),
        ("/tenants/nope/environments/production/promote", {"from": "staging", "digest": "x"}, 404, "slug"),
    ],
)
def test_promote_refusals_name_the_field(api, acme, path, body, status, field):
    _staged_override(acme)
    response = api.post(path, body) if body is not None else api.get(path)
    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert not TenantFlag.objects.filter(environment="production").exists()


def test_a_promotion_of_a_flag_requiring_approval_becomes_a_change_request_another_user_approves(api, acme):
    _staged_override(acme)
    gated = make_flag("gated", requires_approval=True)
    flag_set_override(tenant=acme, flag=gated, enabled=True, actor=None, environment="staging", approved=True)
    digest = api.get("/tenants/acme/environments/production/promote?from=staging").json()["digest"]
    requested = api.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": digest})
    assert requested.status_code == 202, requested.content
    change = requested.json()
    assert change["operation"] == "environment.promote" and change["state"] == "pending_approval"
    assert change["params"] == {
        "tenant": "acme",
        "source": "staging",
        "target": "production",
        "layers": ["overrides", "owner_toggles"],
        "digest": digest,
    }
    assert requested["Location"] == change["url"]
    assert not TenantFlag.objects.filter(environment="production").exists()
    problem(api.post(f"/changes/{change['id']}/approve", If_Match="*"), 422, "invalid_request")  # not one's own
    approver = AdminApi(make_token(make_operator("approver"))[1])
    approved = approver.post(f"/changes/{change['id']}/approve", If_Match="*")
    assert approved.status_code == 200 and approved.json()["state"] == "applied", approved.content
    promoted = TenantFlag.objects.filter(environment="production").values_list("flag__key", flat=True)
    assert sorted(promoted) == ["beta", "gated"]


# ------------------------------------------------------------------------------------- scopes
def test_reading_needs_tenants_read_and_writing_the_write_scopes(acme):
    _staged_override(acme)
    reader = AdminApi(make_token(make_operator("reader", scopes=("tenants:read",)), scopes=("tenants:read",))[1])
    assert reader.get("/tenants/acme/environments").status_code == 200
    assert reader.get("/tenants/acme/environments/production/promote?from=staging").status_code == 200
    problem(reader.post("/tenants/acme/environments", {"key": "qa"}), 403, "insufficient_scope")
    problem(reader.delete("/tenants/acme/environments/staging", If_Match="*"), 403, "insufficient_scope")
    problem(
        reader.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": "x"}),
        403,
        "insufficient_scope",
    )
    # Promoting overrides is a flags:write change as well: a tenants:write token promotes owner toggles only.
    tenants_writer = make_operator("tw", scopes=("tenants:read", "tenants:write"))
    writer = AdminApi(make_token(tenants_writer, scopes=("tenants:read", "tenants:write"))[1])
    digest = writer.get("/tenants/acme/environments/production/promote?from=staging&layers=owner_toggles")
    toggles_only = {"from": "staging", "digest": digest.json()["digest"], "layers": ["owner_toggles"]}
    assert writer.post("/tenants/acme/environments/production/promote", toggles_only).status_code == 200
    every = writer.get("/tenants/acme/environments/production/promote?from=staging").json()["digest"]
    problem(
        writer.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": every}),
        403,
        "insufficient_scope",
    )
    # The scope is not enough: the token's user must hold tenants.change_flag right now.
    flags_writer = make_operator("fw", scopes=("tenants:read", "tenants:write", "flags:write"))
    both = AdminApi(make_token(flags_writer, scopes=("tenants:read", "tenants:write", "flags:write"))[1])
    flags_writer.user_permissions.remove(*flags_writer.user_permissions.filter(codename="change_flag"))
    problem(
        both.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": every}),
        403,
        "permission_denied",
    )
    grant(flags_writer, "tenants.change_flag")
    promoted = both.post("/tenants/acme/environments/production/promote", {"from": "staging", "digest": every})
    assert promoted.status_code == 200 and promoted.json()["applied"] is True


def test_a_plan_with_room_for_production_only_refuses_every_other(api):
    make_tenant("solo", plan=make_plan("solo"))
    Plan.objects.filter(code="solo").update(max_environments=1)
    over = problem(api.post("/tenants/solo/environments", {"key": "staging"}), 422, "invalid_request", "key")
    assert "allows 1 environment " in over["detail"]


def test_an_override_in_staging_of_a_flag_requiring_approval_becomes_a_change_request(api, acme):
    staging(acme)
    make_flag("gated", requires_approval=True)
    requested = api.put("/tenants/acme/overrides/gated?environment=staging", {"enabled": True})
    assert requested.status_code == 202, requested.content
    change = requested.json()
    assert change["operation"] == "flag.set_override" and change["state"] == "pending_approval"
    assert change["params"]["environment"] == "staging" and requested["Location"] == change["url"]
    assert not TenantFlag.objects.exists()
    gated = Flag.objects.get(key="gated")
    flag_set_override(tenant=acme, flag=gated, enabled=True, actor=None, environment="staging", approved=True)
    clearing = api.delete("/tenants/acme/overrides/gated?environment=staging", If_Match="*")
    assert clearing.status_code == 202, clearing.content
    assert clearing.json()["operation"] == "flag.clear_override"
    assert clearing.json()["params"] == {"flag": "gated", "tenant": "acme", "environment": "staging"}
    assert TenantFlag.objects.filter(environment="staging").exists()


def test_a_plans_bound_on_environments_is_set_and_read_through_the_api(api):
    created = api.post("/plans", {"code": "solo", "name": "Solo", "max_environments": 1})
    assert created.status_code == 201 and created.json()["max_environments"] == 1, created.content
    assert api.post("/plans", {"code": "std", "name": "Std"}).json()["max_environments"] == 3
    make_tenant("acme", plan=Plan.objects.get(code="solo"))
    problem(api.post("/tenants/acme/environments", {"key": "staging"}), 422, "invalid_request", "key")
    etag = api.get("/plans/solo")["ETag"]
    problem(
        api.patch("/plans/solo", {"max_environments": 0}, If_Match=etag), 422, "invalid_request", "max_environments"
    )
    problem(
        api.patch("/plans/solo", {"max_environments": None}, If_Match=etag), 422, "invalid_request", "max_environments"
    )
    updated = api.patch("/plans/solo", {"max_environments": 2}, If_Match=etag)
    assert updated.status_code == 200 and updated.json()["max_environments"] == 2
    assert api.post("/tenants/acme/environments", {"key": "staging"}).status_code == 201
    assert api.get("/tenants/acme/environments").json()["max_environments"] == 2


def test_the_environments_list_reads_a_fixed_number_of_queries(api, acme):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/tenants/acme/environments").status_code == 200
        return len(captured)

    queries()  # the token's first use of the minute also records it
    empty = queries()
    staging(acme)
    environment_create(tenant=acme, key="qa", actor=None)
    for n in range(5):
        flag = make_flag(f"f{n}")
        for environment in ("production", "staging", "qa"):
            flag_set_override(tenant=acme, flag=flag, enabled=True, actor=None, environment=environment)
        make_key(acme, environment="qa", name=f"k{n}")
    assert queries() == empty
