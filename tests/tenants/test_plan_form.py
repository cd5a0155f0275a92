"""Plan flag defaults in the admin: two checkbox lists (on / off) instead of raw JSON, raw JSON kept as advanced."""

import pytest
from django.test import Client

from tenants.models import Plan

from .factories import make_flag, make_plan, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(make_staff("root"))
    return client


def post(client, plan, **fields):
    data = {"name": plan.name, "rate_limit_per_minute": "", "burst": "", "daily_quota": "", "max_environments": "3"}
    data["default_flags"] = '{"beta": true}' if plan.default_flags else "{}"
    data["initial-default_flags"] = data["default_flags"]
    data.update(fields)
    return client.post(f"/admin/tenants/plan/{plan.pk}/change/", data)


def test_flags_on_and_off_become_the_plan_defaults(staff_client):
    make_flag("beta")
    make_flag("tools")
    make_flag("legacy")
    plan = make_plan("std", default_flags={"beta": True})
    page = staff_client.get(f"/admin/tenants/plan/{plan.pk}/change/").content.decode()
    assert 'name="flags_on" value="beta"' in page and "checked" in page.split('value="beta"')[1][:40]
    response = post(staff_client, plan, flags_on=["tools"], flags_off=["legacy"])
    assert response.status_code == 302, response.content.decode()[:1500]
    assert Plan.objects.get().default_flags == {"tools": True, "legacy": False}


def test_a_flag_both_on_and_off_is_refused_by_name(staff_client):
    make_flag("beta")
    plan = make_plan("std")
    response = post(staff_client, plan, flags_on=["beta"], flags_off=["beta"])
    assert response.status_code == 200
    assert "beta" in " ".join(response.context["adminform"].form.errors["flags_off"])


def test_raw_json_still_works_and_both_at_once_is_refused(staff_client):
    make_flag("beta")
    plan = make_plan("std")
    assert post(staff_client, plan, default_flags='{"beta": false}').status_code == 302
    assert Plan.objects.get().default_flags == {"beta": False}
    plan.refresh_from_db()
    response = post(
        staff_client,
        plan,
        default_flags='{"beta": true}',
        flags_on=["beta"],
        **{"initial-default_flags": '{"beta": false}'},
    )
    assert response.status_code == 200
    assert "either" in " ".join(response.context["adminform"].form.non_field_errors())
