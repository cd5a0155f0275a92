"""Hostile input from staff pages is a 4xx or a form error naming the field, never a 500.

Generated from the admin registry and the ops URL patterns, so a new admin, filter,
JSON field or cursor parameter is covered without editing this file.
"""

from __future__ import annotations

import pytest
from django import forms
from django.contrib import admin
from django.test import Client

from console.admin import OpsPageAdmin
from tests.portal.sweep import world_state
from tests.tenants.factories import make_staff

pytestmark = pytest.mark.django_db

DEEP = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a": ' * 2000 + "1" + "}" * 2000
SCAN_CURSOR_OVERFLOW = str(2**64)
HOSTILE_LOOKUPS = ["99999999999", "99999999999999999999999", "-1", "0", "not-a-number", "2024-13-45"]


@pytest.fixture
def root(world) -> Client:
    client = Client()
    client.force_login(make_staff("root"))
    client.get("/admin/")
    return client


def registered(kind=None):
    pairs = [(model, model_admin) for model, model_admin in admin.site._registry.items()]
    return sorted(((m, ma) for m, ma in pairs if kind is None or kind(ma)), key=lambda pair: pair[0]._meta.label)


def changelist(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


# ------------------------------------------------------------------ ops placeholder models
OPS_PAGE_MODELS = [model for model, _ in registered(lambda ma: isinstance(ma, OpsPageAdmin))]


@pytest.mark.parametrize("model", OPS_PAGE_MODELS, ids=lambda m: m._meta.model_name)
@pytest.mark.parametrize("tail", ["1/change/", "1/delete/", "1/history/", "1/", "add/", "autocomplete/"])
def test_ops_page_models_have_no_object_urls(root, model, tail):
    assert len(OPS_PAGE_MODELS) == 4
    assert root.get(changelist(model) + tail).status_code == 404
    assert root.post(changelist(model) + tail, {"post": "yes"}).status_code == 404


# --------------------------------------------------------------------------- JSON fields
def json_fields():
    """Every JSON form field of every admin add and change form: (model, admin, field name)."""
    found = []
    for model, model_admin in registered(lambda ma: not isinstance(ma, OpsPageAdmin)):  # no table, no forms
        request = _superuser_request()
        for obj in (None, model._default_manager.first()):
            if (obj is None and not model_admin.has_add_permission(request)) or (
                obj is not None and not model_admin.has_change_permission(request, obj)
            ):
                continue
            form = model_admin.get_form(request, obj)
            readonly = set(model_admin.get_readonly_fields(request, obj))
            for name, field in form.base_fields.items():
                if isinstance(field, forms.JSONField) and name not in readonly:
                    found.append((model, obj, name))
    return found


def _superuser_request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    return request


def test_every_admin_json_field_refuses_absurd_nesting_with_a_form_error(root):
    checked = []
    for model, obj, name in json_fields():
        url = changelist(model) + (f"{obj.pk}/change/" if obj else "add/")
        for value in (DEEP, DEEP_OBJECT, "[" * 40 + "]" * 40):
            before = world_state()
            response = root.post(url, {name: value})
            assert response.status_code == 200, (url, name, response.status_code)
            errors = response.context["adminform"].form.errors
            assert name in errors and "nested too deeply" in str(errors[name]), (url, name, errors.get(name))
            assert world_state() == before
        checked.append(f"{model._meta.label}.{name}@{'change' if obj else 'add'}")
    # Tenant settings and plan default flags, on both forms.
    assert {"tenants.Tenant.settings@add", "tenants.Tenant.settings@change", "tenants.Plan.default_flags@add"} <= set(
        checked
    ), checked


def test_moderate_nesting_in_tenant_settings_is_the_schema_error(root, world):
    response = root.post(f"/admin/tenants/tenant/{world.a.pk}/change/", {"settings": '{"labels": {"a": [[1]]}}'})
    assert response.status_code == 200
    assert "settings.labels.a" in str(response.context["adminform"].form.errors["settings"])


# ------------------------------------------------------------- date hierarchy and filters
def test_every_date_hierarchy_refuses_out_of_range_dates(root):
    hierarchies = [(m, ma.date_hierarchy) for m, ma in registered(lambda ma: ma.date_hierarchy)]
    assert {m._meta.label for m, _ in hierarchies} >= {"audit.AuditEvent", "tenants.UsageDaily"}
    for model, field in hierarchies:
        for query in (
            {f"{field}__year": "99999999999"},
            {f"{field}__year": "9999"},
            {f"{field}__year": "9999", f"{field}__month": "12"},
            {f"{field}__year": "9999", f"{field}__month": "12", f"{field}__day": "31"},
            {f"{field}__year": "2024", f"{field}__month": "99999999999"},
            {f"{field}__year": "2024", f"{field}__month": "2", f"{field}__day": "99999999999"},
            {f"{field}__year": "0"},
        ):
            response = root.get(changelist(model), query)
            assert response.status_code in (200, 302), (model, query, response.status_code)
            if response.status_code == 302:
                assert response["Location"].endswith("?e=1"), response["Location"]


def test_every_changelist_filter_survives_hostile_values(root):
    checked = 0
    for model, _ in registered():
        page = root.get(changelist(model))
        if page.status_code != 200 or "cl" not in (page.context or {}):
            continue
        for spec in page.context["cl"].filter_specs:
            for parameter in spec.expected_parameters():
                for value in HOSTILE_LOOKUPS:
                    response = root.get(changelist(model), {parameter: value})
                    assert response.status_code in (200, 302), (model, parameter, value, response.status_code)
                    checked += 1
    assert checked >= 10 * len(HOSTILE_LOOKUPS)


# -------------------------------------------------------------------- action selections
def test_a_non_key_selection_in_any_action_is_a_message(root):
    checked = 0
    for model, model_admin in registered():
        request = _superuser_request()
        for name in model_admin.get_actions(request):
            for selected in (["not-a-key"], ["99999999999999999999999"], ["1' OR '1'='1"]):
                before = world_state()
                response = root.post(changelist(model), {"action": name, "_selected_action": selected, "index": "0"})
                assert response.status_code == 302, (model, name, selected, response.status_code)
                shown = root.get(response["Location"]).content.decode()
                assert "Not a valid" in shown and "Nothing was done" in shown, (model, name, selected)
                assert world_state() == before
                checked += 1
    assert checked >= 3 * 4  # suspend, resume, test_upstream, revoke at least


# ------------------------------------------------------------------------ SCAN cursors
OPS_PAGES = ["/admin/ops/ratelimits/", "/admin/ops/sessions/", "/admin/ops/redis/", "/admin/ops/breakers/"]


@pytest.mark.parametrize("page", OPS_PAGES)
def test_a_scan_cursor_beyond_64_bits_is_a_400_naming_it(root, page):
    twin = root.get(page, {"cursor": SCAN_CURSOR_OVERFLOW, "format": "json"})
    html = root.get(page, {"cursor": SCAN_CURSOR_OVERFLOW})
    if page in ("/admin/ops/redis/", "/admin/ops/breakers/"):  # these pages take no cursor
        assert twin.status_code == html.status_code == 200
        return
    assert twin.status_code == 400, twin.content
    assert "cursor" in twin.json()["errors"] and "failure" not in twin.json()
    # The page itself shows the form error (as every ops filter does), not a Redis failure.
    assert html.status_code == 200 and b"cursor must be a SCAN cursor" in html.content
    assert b"invalid cursor" not in html.content
    largest = root.get(page, {"cursor": str(2**64 - 1), "format": "json"})
    assert largest.status_code == 200, largest.content
