"""Features page: value and reason for every flag, owner toggles audited, risky ones confirmed, locked ones refused."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import OwnerToggle, TenantFlag
from tenants.selectors import flags_evaluate
from tenants.services.flags import flag_set_override

from .sweep import world_state

pytestmark = pytest.mark.django_db


def toggle_url(world, flag, tenant=None):
    return reverse("portal:feature_toggle", kwargs={"tenant": (tenant or world.a).slug, "flag_key": flag.key})


def features_url(world):
    return reverse("portal:features", kwargs={"tenant": world.a.slug})


def test_page_explains_every_flag_and_why(world, owner_client):
    flag_set_override(tenant=world.a, flag=world.locked, enabled=True, actor=None)
    html = owner_client.get(features_url(world)).content.decode()
    for flag in (world.editable, world.risky, world.locked):
        assert f'id="flag-{flag.key}"' in html
    assert "Platform admin" in html  # billing-v2's admin override
    assert "Default" in html
    assert "Managed by the platform team" in html


def test_owner_toggles_an_editable_flag_and_it_is_audited(world, owner_client):
    assert flags_evaluate(world.a)["new-ui"].enabled is False  # warms the Redis cache
    response = owner_client.post(toggle_url(world, world.editable), {"enabled": "true"})
    assert response.status_code == 302
    assert response["Location"].endswith("/portal/t/acme/features/#flag-new-ui")
    toggle = OwnerToggle.objects.get(tenant=world.a, flag=world.editable)
    assert toggle.enabled is True and toggle.updated_by == world.a_owner
    assert not TenantFlag.objects.filter(tenant=world.a, flag=world.editable).exists()
    event = AuditEvent.objects.filter(action="flag.owner_toggle").latest("id")
    assert event.actor_user == world.a_owner and event.tenant == world.a and event.ip == "127.0.0.1"
    # The cached evaluation was invalidated on commit: the next read sees the toggle.
    evaluated = flags_evaluate(world.a)["new-ui"]
    assert evaluated.enabled is True and evaluated.reason == "owner_toggle"
    assert flags_evaluate(world.b)["new-ui"].enabled is False

    page = owner_client.get(response["Location"])
    html = page.content.decode()
    assert "is now on" in html  # the confirmation message
    assert "Your team" in html
    history = html.split('id="history-title"')[1]
    assert "a-owner" in history and "new-ui" in history


def test_the_service_api_reflects_a_toggle_on_its_next_request(world, owner_client, django_capture_on_commit_callbacks):
    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world.a_secret}"}
    first = api.get("/api/v1/bootstrap", **auth)
    assert first.status_code == 200 and first.json()["flags"]["new-ui"]["enabled"] is False
    with django_capture_on_commit_callbacks(execute=True):  # the cache version is published on commit
        owner_client.post(toggle_url(world, world.editable), {"enabled": "true"})
    second = api.get("/api/v1/bootstrap", HTTP_IF_NONE_MATCH=first["ETag"], **auth)
    assert second.status_code == 200 and second["ETag"] != first["ETag"]
    flag = second.json()["flags"]["new-ui"]
    assert flag["enabled"] is True and flag["reason"] == "owner_toggle"
    other = api.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {world.b_secret}")
    assert other.json()["flags"]["new-ui"]["enabled"] is False


def test_admin_can_toggle_and_switch_back(world, admin_client_a):
    admin_client_a.post(toggle_url(world, world.editable), {"enabled": "true"})
    admin_client_a.post(toggle_url(world, world.editable), {"enabled": "false"})
    assert flags_evaluate(world.a)["new-ui"].enabled is False
    assert AuditEvent.objects.filter(action="flag.owner_toggle", tenant=world.a).count() == 2


def test_risky_flag_needs_confirmation(world, owner_client):
    owner_client.get(features_url(world))  # session activity and the flag cache settle first
    before = world_state()
    response = owner_client.post(toggle_url(world, world.risky), {"enabled": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "marked risky" in html and 'name="confirm"' in html
    assert world_state() == before
    response = owner_client.post(toggle_url(world, world.risky), {"enabled": "true", "confirm": "on"})
    assert response.status_code == 302
    assert flags_evaluate(world.a)["auto-merge"].enabled is True


def test_confirmation_page_on_get(world, owner_client):
    response = owner_client.get(toggle_url(world, world.risky))
    assert response.status_code == 200
    assert "Turn on" in response.content.decode()


def test_locked_flag_offers_no_toggle_and_a_forged_post_is_refused(world, owner_client):
    html = owner_client.get(features_url(world)).content.decode()
    assert toggle_url(world, world.locked) not in html
    assert toggle_url(world, world.editable) in html
    before = world_state()  # the GET above settled session activity and the flag cache
    for data in ({"enabled": "true"}, {"enabled": "true", "confirm": "on"}):
        response = owner_client.post(toggle_url(world, world.locked), data)
        assert response.status_code == 403
        assert "managed by the platform team" in response.content.decode()
    assert owner_client.get(toggle_url(world, world.locked)).status_code == 403
    assert world_state() == before


def test_member_sees_values_but_no_toggles(world, member_client):
    html = member_client.get(features_url(world)).content.decode()
    assert "Turn on" not in html and "Owners and admins can change this" in html
    assert member_client.post(toggle_url(world, world.editable), {"enabled": "true"}).status_code == 403
    assert not TenantFlag.objects.filter(tenant=world.a).exists()


@pytest.mark.parametrize("value", ["", "maybe", "TRUE", "x" * 10_000])
def test_bad_toggle_value_is_explained(world, owner_client, value):
    response = owner_client.post(toggle_url(world, world.editable), {"enabled": value})
    assert response.status_code == 400
    html = response.content.decode()
    assert "on or off" in html
    assert not TenantFlag.objects.filter(tenant=world.a).exists()


@pytest.mark.parametrize("key", ["no-such-flag", "a" * 64])
def test_unknown_flag_is_404(world, owner_client, key):
    url = reverse("portal:feature_toggle", kwargs={"tenant": world.a.slug, "flag_key": key})
    assert owner_client.post(url, {"enabled": "true"}).status_code == 404


@pytest.mark.parametrize("path", ["NEW-UI/", "new ui/", "%ff%fe/", "x" * 65 + "/"])
def test_malformed_flag_keys_are_404(world, owner_client, path):
    assert owner_client.post(f"/portal/t/acme/features/{path}", {"enabled": "true"}).status_code == 404


def test_archived_flag_is_hidden_and_404(world, owner_client):
    from tenants.services.flags import flag_update

    flag_update(flag=world.editable, actor=None, archived=True)
    assert 'id="flag-new-ui"' not in owner_client.get(features_url(world)).content.decode()
    assert owner_client.post(toggle_url(world, world.editable), {"enabled": "true"}).status_code == 404


def test_a_toggle_shows_the_platforms_rollout_and_keeps_it(world, owner_client):
    flag_set_override(tenant=world.a, flag=world.editable, enabled=True, rollout_percent=30, actor=None)
    html = owner_client.get(features_url(world)).content.decode()
    row = html.split(f'id="flag-{world.editable.key}"')[1].split("</tr>")[0]
    assert "30 %" in row and "Change…" in row  # a rollout goes through the page that says what changes
    confirm = owner_client.get(toggle_url(world, world.editable)).content.decode()
    assert "for 30 % of subjects" in confirm and "rollout (30 %) is kept" in confirm

    assert owner_client.post(toggle_url(world, world.editable), {"enabled": "false"}).status_code == 302
    override = TenantFlag.objects.get(tenant=world.a, flag=world.editable)
    assert (override.enabled, override.rollout_percent) == (True, 30)
    row = owner_client.get(features_url(world)).content.decode().split(f'id="flag-{world.editable.key}"')[1]
    # The owner's choice sits beside the platform's, which it never removes.
    assert "platform: 30 % rollout · your choice: off" in row.split("</tr>")[0]

    assert owner_client.post(toggle_url(world, world.editable), {"enabled": "true"}).status_code == 302
    assert flags_evaluate(world.a)[world.editable.key].reason == "rollout"


def test_an_owner_cannot_turn_on_what_the_platform_turned_off(world, owner_client):
    flag_set_override(tenant=world.a, flag=world.editable, enabled=False, actor=None)
    row = owner_client.get(features_url(world)).content.decode().split(f'id="flag-{world.editable.key}"')[1]
    assert "Turned off by the platform team" in row.split("</tr>")[0]
    response = owner_client.post(toggle_url(world, world.editable), {"enabled": "true"})
    assert response.status_code == 400 and "platform team has turned" in response.content.decode()
    assert not OwnerToggle.objects.exists()
