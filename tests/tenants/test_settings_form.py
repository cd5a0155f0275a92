"""Tenant settings in the admin: a typed form built from the schema, raw JSON as the advanced fallback."""

import pytest
from django.test import Client

from tenants.exceptions import InvalidSettings
from tenants.models import Tenant
from tenants.settings_schema import settings_validate

from .factories import make_staff, make_tenant

pytestmark = pytest.mark.django_db

EMPTY_INLINES = {
    "memberships-TOTAL_FORMS": "0",
    "memberships-INITIAL_FORMS": "0",
    "flag_overrides-TOTAL_FORMS": "0",
    "flag_overrides-INITIAL_FORMS": "0",
}


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def change(client, tenant, **fields):
    page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name not in ("slug",)}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    # What the browser posts for fields with a callable default (the JSON box): their initial value, hidden.
    data.update({f"initial-{n}": data[n] for n, f in form.fields.items() if f.show_hidden_initial and n in data})
    data.update(EMPTY_INLINES, **fields)
    return client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", data)


def test_validation_reports_every_error_at_once():
    with pytest.raises(InvalidSettings) as exc:
        settings_validate({"max_concurrent_agents": 0, "agent_type": "robot", "colour": "red"})
    assert set(exc.value.errors) == {"max_concurrent_agents", "agent_type", "colour"}
    assert "settings.max_concurrent_agents" in exc.value.message and "settings.colour" in exc.value.message


def test_the_change_page_renders_one_field_per_schema_entry(staff_client):
    tenant = make_tenant("acme", settings={"max_concurrent_agents": 3, "labels": {"team": "core"}})
    html = staff_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    for name in (
        "agent_type",
        "max_concurrent_agents",
        "session_timeout_seconds",
        "allowed_origins",
        "webhook_url",
        "labels",
    ):
        assert f'name="setting_{name}"' in html
    assert '<option value="goose"' in html and 'value="3"' in html and "team=core" in html
    assert "Raw JSON (advanced)" in html


def test_typed_fields_save_only_what_was_given(staff_client):
    tenant = make_tenant("acme", settings={"max_concurrent_agents": 3})
    response = change(
        staff_client,
        tenant,
        setting_agent_type="goose",
        setting_allowed_origins="https://a.example\nhttps://b.example\n",
        setting_labels="team=core\nregion = eu",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Tenant.objects.get().settings == {
        "agent_type": "goose",
        "max_concurrent_agents": 3,
        "allowed_origins": ["https://a.example/", "https://b.example/"],
        "labels": {"region": "eu", "team": "core"},
    }


def test_every_bad_typed_field_is_reported_on_its_own_field(staff_client):
    tenant = make_tenant("acme")
    response = change(
        staff_client,
        tenant,
        setting_max_concurrent_agents="5000",
        setting_session_timeout_seconds="5",
        setting_webhook_url="not a url",
        setting_labels="no equals sign here",
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {
        "setting_max_concurrent_agents",
        "setting_session_timeout_seconds",
        "setting_webhook_url",
        "setting_labels",
    } <= set(errors)
    assert "key=value" in " ".join(errors["setting_labels"])
    assert Tenant.objects.get().settings == {}


def test_raw_json_stays_an_advanced_fallback_with_all_its_errors(staff_client):
    tenant = make_tenant("acme", settings={"max_concurrent_agents": 3})
    response = change(staff_client, tenant, settings='{"max_concurrent_agents": 0, "colour": "red"}')
    assert response.status_code == 200
    message = " ".join(response.context["adminform"].form.errors["settings"])
    assert "max_concurrent_agents" in message and "colour" in message
    response = change(staff_client, tenant, settings='{"agent_type": "aider", "labels": {"a": "b"}}')
    assert response.status_code == 302
    assert Tenant.objects.get().settings == {"agent_type": "aider", "labels": {"a": "b"}}


def test_changing_both_the_fields_and_the_raw_json_is_refused(staff_client):
    tenant = make_tenant("acme")
    response = change(staff_client, tenant, settings='{"agent_type": "aider"}', setting_agent_type="goose")
    assert response.status_code == 200
    assert "either" in " ".join(response.context["adminform"].form.non_field_errors())


def test_a_schema_type_without_a_form_field_is_named_at_start_up():
    from django.core.exceptions import ImproperlyConfigured
    from pydantic.fields import FieldInfo

    from tenants.settings_form import _field_for

    with pytest.raises(ImproperlyConfigured, match=r"TenantSettings\.tags .*add one to tenants/settings_form\.py"):
        _field_for("tags", FieldInfo(annotation=set[int], default=set()))
