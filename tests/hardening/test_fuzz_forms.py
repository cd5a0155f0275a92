"""Hostile values in every portal form and the tenant admin: a form error or 4xx, never a 500, nothing half-written."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.portal.sweep import db_state, redis_state

from .conftest import PASSWORD
from .strategies import INJECTIONS, encodable, text

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # shrinking a failure would cost minutes; the example is printed
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
values = st.one_of(text, st.integers().map(str), st.sampled_from(["", "true", "false", "on", "0", "-1", "1e309"]))


# Sessions and their index change on every signed-in request (activity) and read-through
# caches fill on a re-rendered page; the data a form writes must not change.
_VOLATILE = (b"agentapi:session:", b"agentapi:sessidx:", b"agentapi:rl:", b"agentapi:cache:", b"agentapi:flags:")


def world_state() -> tuple[dict, dict]:
    """Return the database rows and the Redis keys a rejected form must leave alone."""
    return db_state(), {k: v for k, v in redis_state().items() if not k.startswith(_VOLATILE)}


def _owner(world) -> Client:
    client = Client()
    client.force_login(world.a_owner)
    return client


def _post(client, url, data):
    response = client.post(url, {encodable(k): encodable(v) for k, v in data.items()})
    assert response.status_code < 500, (url, response.status_code)
    return response


def _unchanged_unless_accepted(before, response):
    # A form error re-renders (200/400); only a redirect means something was saved.
    if response.status_code != 302:
        assert world_state() == before


@FUZZ
@given(name=values, scopes=st.lists(values, max_size=3), expires=values)
def test_api_key_form(world, name, scopes, expires):
    client = _owner(world)
    before = world_state()
    url = reverse("portal:keys", kwargs={"tenant": world.a.slug})
    response = client.post(
        url, {"name": encodable(name), "scopes": [encodable(s) for s in scopes], "expires_on": encodable(expires)}
    )
    assert response.status_code < 500
    if response.status_code == 200 and b"secret" not in response.content.lower():
        assert world_state() == before
    if response.status_code in (400, 422):
        assert world_state() == before


@FUZZ
@given(identifier=values, role=values)
def test_member_invite_form(world, identifier, role):
    client = _owner(world)
    before = world_state()
    response = _post(
        client, reverse("portal:members", kwargs={"tenant": world.a.slug}), {"identifier": identifier, "role": role}
    )
    _unchanged_unless_accepted(before, response)


@FUZZ
@given(role=values)
def test_member_role_form(world, role):
    client = _owner(world)
    before = world_state()
    url = reverse("portal:member_role", kwargs={"tenant": world.a.slug, "membership_id": world.a_member_membership.pk})
    response = _post(client, url, {"role": role})
    if role not in ("owner", "admin", "member"):
        assert response.status_code != 302
        assert world_state() == before


@FUZZ
@given(enabled=values, confirm=values)
def test_feature_toggle_form(world, enabled, confirm):
    client = _owner(world)
    before = world_state()
    url = reverse("portal:feature_toggle", kwargs={"tenant": world.a.slug, "flag_key": world.editable.key})
    response = _post(client, url, {"enabled": enabled, "confirm": confirm})
    if enabled not in ("true", "false"):
        assert response.status_code != 302
        assert world_state() == before


@FUZZ
@given(username=values, password=values)
def test_portal_login_form(world, settings, username, password):
    settings.RESILIENCE_RATE_LIMIT_ENABLED = False  # the throttle is tested elsewhere; here the form is
    response = _post(Client(), "/portal/login/", {"username": username, "password": password})
    assert response.status_code == 200  # a form error, never a sign-in
    assert b"errorlist" in response.content or b"error" in response.content.lower()


SETTINGS_VALUES = st.one_of(
    text,
    st.sampled_from(["{", "[]", "null", "1", '"x"', '{"a":', '{"\\u0000": 1}', "{" * 5000, '{"x": 1e99999}', "NaN"]),
    st.dictionaries(text, st.one_of(text, st.integers(), st.booleans(), st.none()), max_size=3).map(json.dumps),
)


@FUZZ
@given(slug=values, name=values, settings_json=SETTINGS_VALUES, url=values, credentials=values)
def test_tenant_admin_add_form(world, slug, name, settings_json, url, credentials):
    admin = get_user_model().objects.filter(username="root").first() or get_user_model().objects.create_superuser(
        "root", "root@example.test", PASSWORD
    )
    client = Client()
    client.force_login(admin)
    before = world_state()
    response = _post(
        client,
        "/admin/tenants/tenant/add/",
        {
            "slug": slug,
            "name": name,
            "plan": str(world.a.plan_id),
            "settings": settings_json,
            "upstream_url": url,
            "new_upstream_credentials": credentials,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "overrides-TOTAL_FORMS": "0",
            "overrides-INITIAL_FORMS": "0",
        },
    )
    if response.status_code == 200:
        assert b"errornote" in response.content or b"errorlist" in response.content
        after = world_state()
        # The superuser's own sign-in row aside, nothing was written.
        assert after[0]["tenants.Tenant"] == before[0]["tenants.Tenant"]
        assert after[0]["audit.AuditEvent"] == before[0]["audit.AuditEvent"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_tenant_admin_change_form_keeps_the_row_on_bad_settings(world, value):
    admin = get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)
    client = Client()
    client.force_login(admin)
    before = world_state()
    url = f"/admin/tenants/tenant/{world.a.pk}/change/"
    response = client.post(url, {"name": value, "plan": str(world.a.plan_id), "settings": value, "upstream_url": value})
    assert response.status_code == 200
    assert b"errorlist" in response.content or b"errornote" in response.content
    assert world_state()[0]["tenants.Tenant"] == before[0]["tenants.Tenant"]


def _root(world) -> Client:
    admin = get_user_model().objects.filter(username="root").first() or get_user_model().objects.create_superuser(
        "root", "root@example.test", PASSWORD
    )
    client = Client()
    client.force_login(admin)
    return client


TYPED_VALUES = st.one_of(values, SETTINGS_VALUES, st.sampled_from(["[" * 5000, "-0", "1e309", "classic"]))


@FUZZ
@given(
    kind=st.one_of(values, st.sampled_from(["boolean", "string", "number", "json"])),
    default_value=TYPED_VALUES,
    variant=st.tuples(values, TYPED_VALUES, values),
    rule=st.tuples(values, values, values, st.sampled_from(["on", "off", "variant", "value", "x"]), TYPED_VALUES),
    schema=SETTINGS_VALUES,
)
def test_flag_admin_add_form(world, kind, default_value, variant, rule, schema):
    client = _root(world)
    before = world_state()
    response = _post(
        client,
        "/admin/tenants/flag/add/",
        {
            "key": "fuzzed",
            "kind": kind,
            "default_value": default_value,
            "schema": schema,
            "variants-0-key": variant[0],
            "variants-0-value": variant[1],
            "variants-0-weight": variant[2],
            "rules-0-segment": rule[0],
            "rules-0-percent": rule[1],
            "rules-0-bucket_by": rule[2],
            "rules-0-serve": rule[3],
            "rules-0-serve_arg": rule[4],
        },
    )
    if response.status_code == 200:
        assert b"errornote" in response.content or b"errorlist" in response.content
        after = world_state()
        assert after[0]["tenants.Flag"] == before[0]["tenants.Flag"]
        assert after[0]["audit.AuditEvent"] == before[0]["audit.AuditEvent"]


@FUZZ
@given(subject=values, name=values, value=values, context_json=TYPED_VALUES)
def test_evaluate_forms_read_only(world, subject, name, value, context_json):
    query = {"subject": subject, "context-0-name": name, "context-0-value": value, "context_json": context_json}
    query = {encodable(k): encodable(v) for k, v in query.items()}
    staff, owner = _root(world), _owner(world)  # signing in is audited: before the snapshot
    before = world_state()
    admin_page = staff.get("/admin/tenants/flag/evaluate/", {"tenant": world.a.slug, **query})
    portal_page = owner.get(reverse("portal:flag_evaluate", kwargs={"tenant": world.a.slug}), query)
    # A form error (200) or the middleware's 400 for characters no query string may carry; never a 500.
    assert admin_page.status_code in (200, 400) and portal_page.status_code in (200, 400)
    after = world_state()
    assert after[0]["tenants.Flag"] == before[0]["tenants.Flag"]
    assert after[0]["audit.AuditEvent"] == before[0]["audit.AuditEvent"]
