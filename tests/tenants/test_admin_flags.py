"""The flag and segment admin: typed flags, variants and rules through the services, every error on its field."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from tenants.models import Flag, Segment
from tenants.services.flags import flag_update, segment_create

from .factories import make_flag, make_staff, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def new_flag(**fields) -> dict:
    data = {
        "key": "checkout",
        "description": "Checkout flow",
        "kind": "string",
        "default": "on",
        "default_value": "classic",
        "schema": "",
        "variants-0-key": "",
        "variants-0-value": "",
        "variants-0-weight": "",
        "rules-0-segment": "",
        "rules-0-percent": "",
        "rules-0-bucket_by": "subject",
        "rules-0-serve": "on",
        "rules-0-serve_arg": "",
    }
    data.update(fields)
    return data


def errors_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return " ".join(" ".join(map(str, e)) for e in response.context["adminform"].form.errors.values())


def field_errors(response, name) -> list[str]:
    return list(response.context["adminform"].form.errors.get(name, []))


def test_the_add_form_renders_kinds_rows_and_segments(staff_client):
    segment_create(key="beta-users", conditions=[], actor=None)
    page = staff_client.get("/admin/tenants/flag/add/").content.decode()
    for kind in ("boolean", "string", "number", "json"):
        assert f'value="{kind}"' in page
    assert 'name="variants-0-weight"' in page and 'name="rules-1-serve"' in page
    assert '<option value="beta-users">beta-users</option>' in page
    assert "tenants/flags.js" in page


def test_create_a_string_flag_with_a_split_and_a_rule(staff_client):
    segment_create(key="beta-users", conditions=[{"attribute": "subject", "op": "in", "values": ["u1"]}], actor=None)
    response = staff_client.post(
        "/admin/tenants/flag/add/",
        new_flag(
            **{
                "variants-0-key": "classic",
                "variants-0-value": "classic",
                "variants-0-weight": "70",
                "variants-1-key": "express",
                "variants-1-value": "one page",
                "variants-1-weight": "30",
                "rules-0-segment": "beta-users",
                "rules-0-percent": "50",
                "rules-0-bucket_by": "tenant",
                "rules-0-serve": "variant",
                "rules-0-serve_arg": "express",
                "requires_approval": "on",
            }
        ),
    )
    assert response.status_code == 302, errors_of(response)
    flag = Flag.objects.get(key="checkout")
    assert flag.kind == "string" and flag.default_value == "classic" and flag.requires_approval
    assert flag.variants == [
        {"key": "classic", "value": "classic", "weight": 70},
        {"key": "express", "value": "one page", "weight": 30},
    ]
    serve = {"enabled": True, "variant": "express"}
    assert flag.rules == [{"segment": "beta-users", "percent": 50, "bucket_by": "tenant", "serve": serve}]
    assert AuditEvent.objects.filter(action="flag.create", actor_label="root").count() == 1


def test_bad_rows_are_errors_on_their_fields_all_at_once(staff_client):
    response = staff_client.post(
        "/admin/tenants/flag/add/",
        new_flag(
            kind="number",
            default_value="many",
            **{
                "variants-0-key": "low",
                "variants-0-value": "1",
                "variants-0-weight": "x",
                "variants-1-key": "high",
                "variants-1-value": "ten",
                "variants-1-weight": "30",
                "rules-0-percent": "150",
                "rules-0-serve": "on",
            },
        ),
    )
    assert response.status_code == 200
    assert field_errors(response, "default_value") == ["'many' is not a number."]
    variants = field_errors(response, "variants")
    assert "Row 1, weight: 'x' is not a whole number." in variants
    assert "Row 2, value: 'ten' is not a number." in variants
    assert field_errors(response, "rules") == ["Row 1, percent: percent is a whole number from 0 to 100."]
    assert not Flag.objects.exists()


def test_service_errors_name_the_row_and_the_part(staff_client):
    response = staff_client.post(
        "/admin/tenants/flag/add/",
        new_flag(
            **{
                "variants-0-key": "a",
                "variants-0-value": "A",
                "variants-0-weight": "60",
                "variants-1-key": "b",
                "variants-1-value": "B",
                "variants-1-weight": "30",
                "rules-0-serve": "variant",
                "rules-0-serve_arg": "zzz",
                "rules-1-serve": "variant",
                "rules-1-serve_arg": "b",
                "rules-1-bucket_by": "subject",
                "rules-1-segment": "",
                "rules-1-percent": "5",
                "rules-0-percent": "100",
            }
        ),
    )
    assert field_errors(response, "variants") == [
        "weights add up to 90; they must add up to 100 (a split) or 0 (no split)."
    ]
    assert field_errors(response, "rules") == ["Row 1, serve.variant: no variant 'zzz' on this flag."]
    assert 'class="row-editor-row row-error" data-index="0"' in response.content.decode()


def test_json_flag_values_must_match_its_schema(staff_client):
    response = staff_client.post(
        "/admin/tenants/flag/add/",
        new_flag(
            kind="json",
            default_value='{"limit": "ten"}',
            schema='{"type": "object", "properties": {"limit": {"type": "integer"}}}',
        ),
    )
    assert "does not match the flag's JSON Schema" in " ".join(field_errors(response, "default_value"))
    bad_json = staff_client.post("/admin/tenants/flag/add/", new_flag(kind="json", default_value="{nope"))
    assert field_errors(bad_json, "default_value")[0].startswith("not valid JSON")
    deep = staff_client.post(
        "/admin/tenants/flag/add/", new_flag(kind="json", default_value="[" * 5000, schema="[" * 5000)
    )
    assert "nested too deeply" in field_errors(deep, "default_value")[0]
    assert "nested too deeply" in field_errors(deep, "schema")[0]
    ok = staff_client.post(
        "/admin/tenants/flag/add/",
        new_flag(
            kind="json",
            default_value='{"limit": 10}',
            schema='{"type": "object", "properties": {"limit": {"type": "integer"}}}',
        ),
    )
    assert ok.status_code == 302
    assert Flag.objects.get().default_value == {"limit": 10}


def test_change_keeps_kind_and_updates_through_the_service(staff_client):
    flag = make_flag("limits", kind="number", default_value=10)
    page = staff_client.get(f"/admin/tenants/flag/{flag.pk}/change/").content.decode()
    assert 'name="kind"' not in page and 'name="schema"' not in page
    assert 'name="default_value" value="10"' in page
    response = staff_client.post(
        f"/admin/tenants/flag/{flag.pk}/change/",
        {
            "description": "Limits",
            "default": "on",
            "default_value": "12.5",
            "kind": "string",  # ignored: the kind is permanent
            "variants-0-key": "big",
            "variants-0-value": "100",
            "variants-0-weight": "0",
            "rules-0-percent": "10",
            "rules-0-bucket_by": "subject",
            "rules-0-serve": "value",
            "rules-0-serve_arg": "50",
        },
    )
    assert response.status_code == 302, errors_of(response)
    flag.refresh_from_db()
    assert flag.kind == "number" and flag.default_value == 12.5
    assert flag.variants == [{"key": "big", "value": 100, "weight": 0}]
    assert flag.rules[0]["serve"] == {"enabled": True, "value": 50}
    assert AuditEvent.objects.filter(action="flag.update").count() == 1


def test_boolean_flag_change_shows_rules_but_no_values(staff_client):
    flag = make_flag("beta")
    page = staff_client.get(f"/admin/tenants/flag/{flag.pk}/change/").content.decode()
    assert 'name="rules-0-segment"' in page and 'name="variants-0-key"' not in page
    response = staff_client.post(
        f"/admin/tenants/flag/{flag.pk}/change/",
        {"description": "x", "rules-0-percent": "20", "rules-0-bucket_by": "subject", "rules-0-serve": "variant"},
    )
    assert field_errors(response, "rules") == [
        "Row 1, serve: only an enabled rule of a typed flag serves a variant or a value."
    ]


def test_removing_a_variant_an_override_serves_is_refused_on_the_field(staff_client):
    from tenants.services.flags import flag_set_override

    flag = make_flag(
        "plan-tier",
        kind="string",
        default_value="a",
        variants=[{"key": "a", "value": "A", "weight": 0}, {"key": "b", "value": "B", "weight": 0}],
    )
    tenant = make_tenant("acme")
    flag_set_override(tenant=tenant, flag=flag, enabled=True, variant="b", actor=None)
    response = staff_client.post(
        f"/admin/tenants/flag/{flag.pk}/change/",
        {"description": "x", "default_value": "a", "variants-0-key": "a", "variants-0-value": "A"},
    )
    assert response.status_code == 200
    assert "the override for tenant acme would no longer fit" in errors_of(response)
    flag.refresh_from_db()
    assert len(flag.variants) == 2


def test_segment_create_change_and_delete_through_services(staff_client):
    response = staff_client.post(
        "/admin/tenants/segment/add/",
        {
            "key": "eu-beta",
            "name": "EU beta",
            "description": "",
            "conditions-0-attribute": "tenant.labels",
            "conditions-0-op": "in",
            "conditions-0-values": "eu\nbeta",
            "conditions-1-attribute": "context.app_version",
            "conditions-1-op": "semver_gte",
            "conditions-1-values": "2.0.0",
        },
    )
    assert response.status_code == 302, errors_of(response)
    segment = Segment.objects.get()
    assert segment.conditions == [
        {"attribute": "tenant.labels", "op": "in", "values": ["eu", "beta"]},
        {"attribute": "context.app_version", "op": "semver_gte", "values": ["2.0.0"]},
    ]
    page = staff_client.get(f"/admin/tenants/segment/{segment.pk}/change/").content.decode()
    assert "no flag: it can be deleted" in page and '<option value="tenant.labels">' in page
    flag = make_flag("beta", rules=[{"segment": "eu-beta", "serve": {"enabled": True}}])
    page = staff_client.get(f"/admin/tenants/segment/{segment.pk}/change/").content.decode()
    assert f'href="/admin/tenants/flag/{flag.pk}/change/">beta</a>' in page
    refused = staff_client.post(f"/admin/tenants/segment/{segment.pk}/delete/", {"post": "yes"}, follow=True)
    assert "Segment eu-beta is used by the rules of beta: remove those rules first." in refused.content.decode()
    assert Segment.objects.exists()
    flag_update(flag=flag, rules=[], actor=None)
    staff_client.post(f"/admin/tenants/segment/{segment.pk}/delete/", {"post": "yes"})
    assert not Segment.objects.exists()
    audited = AuditEvent.objects.filter(action__startswith="segment.").order_by("id")
    assert list(audited.values_list("action", flat=True)) == ["segment.create", "segment.delete"]


def test_bad_conditions_are_errors_naming_each_row(staff_client):
    response = staff_client.post(
        "/admin/tenants/segment/add/",
        {
            "key": "Bad Key",
            "conditions-0-attribute": "nonsense",
            "conditions-0-op": "in",
            "conditions-0-values": "x",
            "conditions-1-attribute": "context.version",
            "conditions-1-op": "semver_gt",
            "conditions-1-values": "not-a-version",
            "conditions-2-attribute": "subject",
            "conditions-2-op": "regex",
            "conditions-2-values": "(a+)+",
        },
    )
    assert response.status_code == 200
    errors = field_errors(response, "conditions")
    assert errors[0].startswith("Row 1, attribute: attribute is subject, context.<name>")
    assert errors[1] == "Row 2, values: semver_gt needs a semantic version such as 1.4.0."
    assert errors[2].startswith("Row 3, values: nested quantifiers")
    assert field_errors(response, "key")
    assert not Segment.objects.exists()


def test_rows_read_back_in_order_without_javascript_gaps_and_bounds():
    from tenants.flag_forms import Column, RowsWidget

    widget = RowsWidget([Column("key", "Key"), Column("op", "Op", kind="select", choices=(("in", "in"), ("lt", "lt")))])
    data = {
        "c-7-key": "last",
        "c-0-key": "first",
        "c-0-op": "lt",
        "c-3-key": "",  # emptied: dropped
        "c-3-op": "in",
        "c-5-op": "lt",  # a changed select alone still counts
        "c-999-key": "beyond the bound",
        "c-1-nope": "unknown column",
    }
    assert widget.value_from_datadict(data, {}, "c") == [
        {"key": "first", "op": "lt"},
        {"key": "", "op": "lt"},
        {"key": "last", "op": "in"},  # a select missing from the POST reads as its first choice
    ]
