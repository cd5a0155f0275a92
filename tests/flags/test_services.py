"""Flag, segment and label services: validation naming the field, refusals, re-stamping, versions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.exceptions import TenantsError
from tenants.models import Flag, Membership, Segment, Tenant
from tenants.selectors import flags_evaluate, tenant_document_build
from tenants.services.flags import (
    flag_clear_override,
    flag_owner_reset,
    flag_owner_toggle,
    flag_set_override,
    flag_update,
    segment_create,
    segment_delete,
    segment_update,
)
from tenants.services.tenants import labels_validate, tenant_update
from tests.tenants.factories import make_flag, make_plan, make_tenant, make_user

pytestmark = pytest.mark.django_db

COLOURS = [{"key": "red", "value": "#f00", "weight": 50}, {"key": "green", "value": "#0f0", "weight": 50}]


def colour_flag(key="theme", **fields):
    fields.setdefault("variants", COLOURS)
    return make_flag(key, kind="string", default_value="#fff", default=True, tenant_editable=True, **fields)


def refused(field: str, call, *args, **kwargs) -> TenantsError:
    with pytest.raises(TenantsError) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field, caught.value.message
    assert field in caught.value.message or caught.value.message
    return caught.value


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"kind": "colour"}, "kind"),
        ({"kind": "string"}, "default_value"),
        ({"kind": "string", "default_value": 3}, "default_value"),
        ({"kind": "number", "default_value": "3"}, "default_value"),
        ({"kind": "boolean", "variants": COLOURS}, "variants"),
        ({"kind": "string", "default_value": "x", "variants": [{"key": "A", "value": "x"}]}, "variants[0].key"),
        ({"kind": "string", "default_value": "x", "variants": [{"key": "a"}]}, "variants[0].value"),
        ({"kind": "string", "default_value": "x", "variants": [{"key": "a", "value": 1}]}, "variants[0].value"),
        (
            {"kind": "string", "default_value": "x", "variants": [{"key": "a", "value": "x", "weight": 101}]},
            "variants[0].weight",
        ),
        (
            {"kind": "string", "default_value": "x", "variants": [{"key": "a", "value": "x", "weight": 60}]},
            "variants",
        ),
        (
            {
                "kind": "string",
                "default_value": "x",
                "variants": [{"key": "a", "value": "x"}, {"key": "a", "value": "y"}],
            },
            "variants[1].key",
        ),
        ({"rules": [{"segment": "nowhere", "serve": {"enabled": True}}]}, "rules[0].segment"),
        ({"rules": [{"percent": 101, "serve": {"enabled": True}}]}, "rules[0].percent"),
        ({"rules": [{"bucket_by": "user", "serve": {"enabled": True}}]}, "rules[0].bucket_by"),
        ({"rules": [{"serve": {"enabled": "yes"}}]}, "rules[0].serve.enabled"),
        ({"rules": [{"serve": {"enabled": True, "value": True}}]}, "rules[0].serve"),
        ({"rules": [{"segment": None}]}, "rules[0]"),
        (
            {"kind": "string", "default_value": "x", "variants": COLOURS, "rules": [{"serve": {"variant": "blue"}}]},
            "rules[0].serve.variant",
        ),
        ({"kind": "json", "default_value": {}, "schema": {"type": "nope"}}, "schema"),
        ({"kind": "json", "default_value": {"a": 1}, "schema": {"type": "object", "required": ["b"]}}, "default_value"),
        ({"rules": "all"}, "rules"),
        ({"kind": "string", "default_value": "x" * 20_000}, "default_value"),
        (
            {"kind": "number", "default_value": 1, "variants": [{"key": f"v{n}", "value": n} for n in range(21)]},
            "variants",
        ),
        ({"rules": [{"serve": {"enabled": True}}] * 51}, "rules"),
        ({"kind": "number", "default_value": 1, "rules": [{"serve": {"value": "2"}}]}, "rules[0].serve.value"),
    ],
)
def test_flag_create_names_the_invalid_field(fields, field):
    refused(field, make_flag, "bad", **fields)
    assert not Flag.objects.filter(key="bad").exists()


def test_key_and_kind_are_permanent():
    flag = colour_flag()
    refused("kind", flag_update, flag=flag, kind="number", actor=None)
    refused("key", flag_update, flag=flag, key="other", actor=None)


def test_a_variant_change_that_strands_an_override_is_refused_naming_the_tenant():
    flag = colour_flag()
    tenant = make_tenant("acme")
    flag_set_override(tenant=tenant, flag=flag, enabled=True, variant="green", actor=None)
    error = refused("variant", flag_update, flag=flag, variants=[COLOURS[0] | {"weight": 100}], actor=None)
    assert "acme" in error.message
    flag_clear_override(tenant=tenant, flag=flag, actor=None)
    flag_update(flag=flag, variants=[COLOURS[0] | {"weight": 100}], actor=None)


def test_owner_variants_must_exist_and_bound_the_owner():
    flag = colour_flag()
    owner = make_user()
    tenant = make_tenant("acme", owner=owner)
    refused(
        "owner_variants", flag_set_override, tenant=tenant, flag=flag, enabled=True, owner_variants=["x"], actor=None
    )
    refused("variant", flag_owner_toggle, tenant=tenant, flag=flag, enabled=True, variant="green", actor=owner)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, variant="red", owner_variants=["green"], actor=None)
    refused("variant", flag_owner_toggle, tenant=tenant, flag=flag, enabled=True, variant="red", actor=owner)
    refused("variant", flag_owner_toggle, tenant=tenant, flag=flag, enabled=False, variant="green", actor=owner)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=True, variant="green", actor=owner)
    answer = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["theme"]
    assert (answer.variant, answer.value, answer.reason) == ("green", "#0f0", "owner_toggle")
    assert Membership.objects.filter(tenant=tenant, user=owner).exists()


def test_boolean_overrides_carry_no_variant_or_value():
    flag = make_flag("beta")
    tenant = make_tenant()
    refused("variant", flag_set_override, tenant=tenant, flag=flag, enabled=True, variant="red", actor=None)
    refused("variant", flag_set_override, tenant=tenant, flag=flag, enabled=True, value=True, actor=None)


def test_segments_validate_and_cannot_be_deleted_while_a_rule_uses_them():
    refused(
        "conditions[0].op",
        segment_create,
        key="eu",
        conditions=[{"attribute": "subject", "op": "?", "values": ["x"]}],
        actor=None,
    )
    refused("key", segment_create, key="EU!", conditions=[], actor=None)
    segment = segment_create(
        key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None
    )
    refused("key", segment_create, key="eu", conditions=[], actor=None)
    refused("key", segment_update, segment=segment, key="us", actor=None)
    flag = make_flag("beta", rules=[{"segment": "eu", "serve": {"enabled": True}}])
    error = refused("segment", segment_delete, segment=segment, actor=None)
    assert "beta" in error.message
    flag_update(flag=flag, rules=[], actor=None)
    segment_delete(segment=segment, actor=None)
    assert not Segment.objects.exists()


def test_a_segment_update_restamps_tenants_and_moves_the_versions_of_flags_using_it():
    segment = segment_create(
        key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None
    )
    make_flag("beta", rules=[{"segment": "eu", "serve": {"enabled": True}}])
    tenant = make_tenant("acme")
    tenant_update(tenant=tenant, labels=["us"], actor=None)
    tenant = Tenant.objects.get(pk=tenant.pk)
    before = flags_evaluate(tenant)["beta"]
    assert (before.enabled, before.reason) == (False, "default")
    segment_update(
        segment=segment, conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["us"]}], actor=None
    )
    restamped = Tenant.objects.get(pk=tenant.pk)
    assert restamped.cache_version > tenant.cache_version
    after = flags_evaluate(restamped)["beta"]
    assert (after.enabled, after.reason, after.rule) == (True, "rule", 1)
    assert after.version > before.version


def test_a_label_change_moves_the_version_of_flags_it_decides():
    segment_create(key="eu", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None)
    make_flag("beta", rules=[{"segment": "eu", "serve": {"enabled": True}}])
    tenant = make_tenant("acme")
    before = flags_evaluate(tenant)["beta"]
    tenant_update(tenant=tenant, labels=["eu"], actor=None)
    after = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["beta"]
    assert (after.enabled, after.reason) == (True, "rule") and after.version > before.version


def test_removing_an_override_or_an_owner_choice_moves_the_version():
    owner = make_user()
    tenant = make_tenant("acme", owner=owner)
    flag = make_flag("beta", tenant_editable=True)
    flag_set_override(tenant=tenant, flag=flag, enabled=True, actor=None)
    flag_owner_toggle(tenant=tenant, flag=flag, enabled=False, actor=owner)
    # The override is newer than the owner's choice only in order; clearing it changes nothing decided.
    toggled = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["beta"]
    assert (toggled.enabled, toggled.reason) == (False, "owner_toggle")
    flag_owner_reset(tenant=tenant, flag=flag, actor=None)
    reset = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["beta"]
    assert (reset.enabled, reset.reason) == (True, "admin_override") and reset.version > toggled.version
    flag_clear_override(tenant=tenant, flag=flag, actor=None)
    cleared = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["beta"]
    assert (cleared.enabled, cleared.reason) == (False, "default") and cleared.version > reset.version


def test_a_plan_switch_moves_the_version():
    make_flag("beta")
    on, off = make_plan("on", default_flags={"beta": True}), make_plan("off")
    tenant = make_tenant("acme", plan=on)
    before = flags_evaluate(tenant)["beta"]
    tenant_update(tenant=tenant, plan=off, actor=None)
    after = flags_evaluate(Tenant.objects.get(pk=tenant.pk))["beta"]
    assert (before.reason, after.reason) == ("plan", "default") and after.version > before.version


@pytest.mark.parametrize("labels,expected", [(None, []), ([" EU ", "beta", "eu"], ["beta", "eu"]), ([], [])])
def test_labels_are_cleaned(labels, expected):
    assert labels_validate(labels) == expected


@pytest.mark.parametrize("labels", ["eu", [1], ["-eu"], ["a" * 41], [f"l{n}" for n in range(21)]])
def test_bad_labels_name_the_field(labels):
    refused("labels", labels_validate, labels)
    tenant = make_tenant()
    refused("labels", tenant_update, tenant=tenant, labels=labels, actor=None)


def _cold_fill_queries(flags: int, tenants: int) -> int:
    for n in range(3):
        segment_create(
            key=f"s{flags}-{n}", conditions=[{"attribute": "tenant.labels", "op": "in", "values": ["eu"]}], actor=None
        )
    for n in range(flags):
        make_flag(f"f{flags}-{n}", rules=[{"segment": f"s{flags}-{n % 3}", "serve": {"enabled": True}}])
    built = [make_tenant() for _ in range(tenants)]
    with CaptureQueriesContext(connection) as queries:
        tenant_document_build(built[-1].pk)
    return len(queries)


def test_a_cold_fill_is_a_fixed_number_of_queries_whatever_the_flags_and_tenants():
    small = _cold_fill_queries(flags=2, tenants=1)
    large = _cold_fill_queries(flags=40, tenants=6)
    assert small == large == 5, (small, large)  # tenant+plan, overrides, owner toggles, segments, flags


@pytest.mark.django_db(transaction=True)
def test_a_segment_cannot_be_deleted_while_a_flag_naming_it_is_being_saved():
    """The flag's save locks the segments its rules name: a concurrent delete waits, then sees the user."""
    import threading

    from django.db import transaction

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (DATABASE_URL=postgres://...)")
    segment = segment_create(key="eu", conditions=[], actor=None)
    saving, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def save_flag():
        try:
            with transaction.atomic():
                make_flag("beta", rules=[{"segment": "eu", "serve": {"enabled": True}}])
                saving.set()
                release.wait(10)
        finally:
            connection.close()

    def delete_segment():
        try:
            segment_delete(segment=segment, actor=None)
            outcome["deleted"] = True
        except TenantsError as exc:
            outcome["refused"] = exc.message
        finally:
            connection.close()

    saver = threading.Thread(target=save_flag)
    saver.start()
    assert saving.wait(10)
    deleter = threading.Thread(target=delete_segment)
    deleter.start()
    deleter.join(0.5)
    assert deleter.is_alive()  # waiting for the flag's transaction
    release.set()
    saver.join(10)
    deleter.join(10)
    assert "beta" in outcome["refused"] and Segment.objects.filter(key="eu").exists()
