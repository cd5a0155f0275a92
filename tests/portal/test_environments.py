"""Environments in the portal: the picker on features and evaluate, the environments page, promotion, keys."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from changes.models import ChangeRequest
from tenants.models import ApiKey, Environment, OwnerToggle, TenantFlag
from tenants.selectors import flags_evaluate
from tenants.services.apikeys import apikey_revoke
from tenants.services.environments import OWNER_TOGGLES, environment_diff
from tenants.services.flags import flag_owner_toggle, flag_set_override, flag_update
from tests.tenants.factories import make_key

from .sweep import world_state

pytestmark = pytest.mark.django_db


def url(name, world, tenant=None, **kwargs):
    return reverse(f"portal:{name}", kwargs={"tenant": (tenant or world.a).slug, **kwargs})


def row_of(html: str, key: str) -> str:
    return re.search(rf'<tr id="flag-{re.escape(key)}">.*?</tr>', html, re.S).group(0)


def main_of(html: str) -> str:
    return html.split('<main id="main"')[1].split("</main>")[0]


# ------------------------------------------------------------------ features: picker and toggles
def test_features_picker_lists_production_first_and_marks_the_selected_one(world, member_client):
    html = member_client.get(url("features", world) + "?env=staging").content.decode()
    picker = re.search(r'<nav class="env-picker".*?</nav>', html, re.S).group(0)
    assert picker.index(">production<") < picker.index(">staging<")
    assert re.search(r'href="[^"]*\?env=staging"[^>]*aria-current="page"', picker)
    assert 'href="/portal/t/acme/features/"' in picker  # production is the plain URL
    assert "qa" not in picker  # B's environment


def test_features_show_the_selected_environments_values(world, owner_client):
    flag_set_override(
        tenant=world.a, flag=world.editable, enabled=True, rollout_percent=30, environment="staging", actor=None
    )
    production = row_of(owner_client.get(url("features", world)).content.decode(), "new-ui")
    staging = row_of(owner_client.get(url("features", world) + "?env=staging").content.decode(), "new-ui")
    assert "30 %" not in production and ">Off<" in production
    assert "30 %" in staging and "Platform admin" not in production
    page = owner_client.get(url("features", world) + "?env=staging").content.decode()
    assert 'href="/portal/t/acme/environments/promote/?source=staging&amp;target=production"' in page


def test_owner_toggles_in_the_selected_environment_and_stays_there(world, owner_client):
    page = owner_client.get(url("features", world) + "?env=staging").content.decode()
    action = url("feature_toggle", world, flag_key="new-ui") + "?env=staging"
    assert f'action="{action}"' in row_of(page, "new-ui")
    response = owner_client.post(action, {"enabled": "true"})
    assert response.status_code == 302
    assert response["Location"] == url("features", world) + "?env=staging#flag-new-ui"
    toggle = OwnerToggle.objects.get(tenant=world.a, flag=world.editable)
    assert toggle.environment == "staging" and toggle.enabled is True
    assert flags_evaluate(world.a, environment="staging")["new-ui"].enabled is True
    assert flags_evaluate(world.a)["new-ui"].enabled is False
    html = owner_client.get(response["Location"]).content.decode()
    assert "is now on for Acme in staging" in html
    assert ">On<" in row_of(html, "new-ui")
    assert ">Off<" in row_of(owner_client.get(url("features", world)).content.decode(), "new-ui")


def test_the_confirmation_page_keeps_the_environment(world, owner_client):
    flag_set_override(tenant=world.a, flag=world.risky, enabled=True, environment="staging", actor=None)
    html = owner_client.get(url("feature_toggle", world, flag_key="auto-merge") + "?env=staging").content.decode()
    assert 'action="/portal/t/acme/features/auto-merge/?env=staging"' in html
    assert 'href="/portal/t/acme/features/?env=staging#flag-auto-merge"' in html  # Cancel
    assert "in staging" in main_of(html)
    response = owner_client.post(
        url("feature_toggle", world, flag_key="auto-merge") + "?env=staging", {"enabled": "false", "confirm": "on"}
    )
    assert response["Location"].endswith("?env=staging#flag-auto-merge")
    assert OwnerToggle.objects.get(flag=world.risky).environment == "staging"


@pytest.mark.parametrize("env", ["nope", "qa", "PRODUCTION", "x" * 5000, "%ff"])
def test_an_unknown_environment_is_a_404_that_says_so(world, owner_client, env):
    before = world_state()
    toggle = url("feature_toggle", world, flag_key="new-ui")
    for response in (
        owner_client.get(f"{url('features', world)}?env={env}"),
        owner_client.get(f"{toggle}?env={env}"),
        owner_client.post(f"{toggle}?env={env}", {"enabled": "true"}),
    ):
        assert response.status_code == 404, response.request["PATH_INFO"]
        assert "has no environment" in response.content.decode()
        assert "production, staging" in response.content.decode()
    assert world_state()[0] == before[0]


def test_a_toggle_is_scheduled_in_the_selected_environment(world, owner_client):
    schedule = url("feature_schedule", world, flag_key="new-ui")
    assert schedule + '"' in row_of(owner_client.get(url("features", world)).content.decode(), "new-ui")
    staging_page = owner_client.get(url("features", world) + "?env=staging").content.decode()
    assert schedule + "?env=staging" in row_of(staging_page, "new-ui")
    form = owner_client.get(schedule + "?env=staging").content.decode()
    assert "in <strong" in form and 'action="' + schedule + '?env=staging"' in form
    moment = (timezone.now() + timedelta(hours=1)).astimezone(UTC)
    response = owner_client.post(schedule + "?env=staging", {"enabled": "true", "apply_at": f"{moment:%Y-%m-%dT%H:%M}"})
    assert response.status_code == 302, response.content.decode()[:2000]
    change = ChangeRequest.objects.get()
    assert change.params["environment"] == "staging" and change.params["flag"] == "new-ui"
    assert not OwnerToggle.objects.exists()
    assert owner_client.get(schedule + "?env=nope").status_code == 404


def test_a_member_sees_an_environment_but_cannot_toggle_in_it(world, member_client):
    html = member_client.get(url("features", world) + "?env=staging").content.decode()
    assert "Turn on" not in html
    response = member_client.post(url("feature_toggle", world, flag_key="new-ui") + "?env=staging", {"enabled": "true"})
    assert response.status_code == 403
    assert not OwnerToggle.objects.exists()


def test_history_names_the_environment_of_a_change(world, owner_client):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    history = owner_client.get(url("features", world)).content.decode().split('id="history-title"')[1]
    assert "new-ui" in history and "in staging" in history


# ------------------------------------------------------------------ evaluate
def test_evaluate_offers_the_environments_and_evaluates_in_the_chosen_one(world, member_client):
    flag_set_override(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=None)
    html = member_client.get(url("flag_evaluate", world)).content.decode()
    select = re.search(r'<select name="env".*?</select>', html, re.S).group(0)
    assert select.index("production") < select.index("staging") and "qa" not in select
    production = member_client.get(url("flag_evaluate", world) + "?subject=u-1").content.decode()
    staging = member_client.get(url("flag_evaluate", world) + "?subject=u-1&env=staging").content.decode()
    answer = r'<tr id="eval-new-ui">.*?</tr>'
    assert ">Off<" in re.search(answer, production, re.S).group(0)
    assert ">On<" in re.search(answer, staging, re.S).group(0)
    assert "in staging" in staging.split('id="results"')[1]
    assert re.search(r'<option value="staging" selected>', staging)
    assert 'href="/portal/t/acme/features/?env=staging">Back to features' in staging


def test_evaluate_in_an_unknown_environment_names_the_field(world, member_client):
    response = member_client.get(url("flag_evaluate", world) + "?subject=u-1&env=nope")
    html = response.content.decode()
    assert response.status_code == 200  # as every error of this read-only form
    assert "Nothing was evaluated" in html and 'id="evaluation"' not in html
    assert re.search(r"id_env_error", html)


# ------------------------------------------------------------------ the environments page
def test_environments_page_lists_every_environment_with_its_counts(world, member_client):
    flag_set_override(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=None)
    flag_set_override(tenant=world.a, flag=world.locked, enabled=True, environment="staging", actor=None)
    flag_owner_toggle(tenant=world.a, flag=world.risky, enabled=True, environment="staging", actor=world.a_owner)
    make_key(world.a, name="staging replica", environment="staging")
    revoked, _ = make_key(world.a, name="old staging", environment="staging")
    apikey_revoke(api_key=revoked, actor=None)
    response = member_client.get(url("environments", world))
    assert response.status_code == 200
    html = response.content.decode()
    production = re.search(r'<tr id="env-production">.*?</tr>', html, re.S).group(0)
    staging = re.search(r'<tr id="env-staging">.*?</tr>', html, re.S).group(0)
    assert html.index('id="env-production"') < html.index('id="env-staging"')
    counts = r'data-label="{}">(\d+)<'
    assert re.search(counts.format("Overrides"), staging).group(1) == "2"
    assert re.search(counts.format("Owner toggles"), staging).group(1) == "1"
    assert re.search(counts.format("Live API keys"), staging).group(1) == "1"
    assert re.search(counts.format("Live API keys"), production).group(1) == "1"  # acme replica
    assert re.search(counts.format("Overrides"), production).group(1) == "0"
    assert "qa" not in main_of(html)
    # Members read: no add form, no delete, no promote button.
    assert "Add an environment" not in html and "/delete/" not in html
    assert "allows 3 environments" in html


def test_owner_adds_an_environment(world, owner_client):
    response = owner_client.post(url("environments", world), {"key": "dev", "name": "Development"})
    assert response.status_code == 302 and response["Location"] == url("environments", world)
    env = Environment.objects.get(tenant=world.a, key="dev")
    assert env.name == "Development" and env.created_by == world.a_owner
    event = AuditEvent.objects.get(action="environment.create", object_id="dev")
    assert event.tenant == world.a and event.actor_user == world.a_owner
    html = owner_client.get(response["Location"]).content.decode()
    assert 'id="env-dev"' in html and "“dev” was added" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": ""}, "Give the environment a key"),
        ({"key": "Staging!"}, "use 1-32 characters"),
        ({"key": "x" * 33}, "at most 32 characters"),
        ({"key": "9lives"}, "starting with a letter"),
        ({"key": "staging"}, "has an environment &#x27;staging&#x27; already"),
        ({"key": "production"}, "every tenant has production already"),
        ({"key": "dev", "name": "n" * 101}, "at most 100 characters"),
    ],
)
def test_add_errors_name_the_field_and_write_nothing(world, owner_client, data, message):
    owner_client.get(url("environments", world))
    before = world_state()
    response = owner_client.post(url("environments", world), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "The environment was not added" in html
    assert 'aria-invalid="true"' in html
    assert world_state() == before


def test_adding_over_the_plans_bound_shows_the_bound(world, owner_client):
    assert owner_client.post(url("environments", world), {"key": "dev"}).status_code == 302  # 3 of 3
    html = owner_client.get(url("environments", world)).content.decode()
    assert "allows 3 environments (production included); Acme has 3" in html
    response = owner_client.post(url("environments", world), {"key": "qa"})
    assert response.status_code == 400
    assert "allows 3 environments (production included)" in response.content.decode()
    assert not Environment.objects.filter(tenant=world.a, key="qa").exists()


def test_owner_deletes_an_environment_after_confirming(world, owner_client):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    delete = url("environment_delete", world, environment="staging")
    assert delete in owner_client.get(url("environments", world)).content.decode()
    confirm = owner_client.get(delete).content.decode()
    assert "Delete “staging”?" in confirm and "1 owner toggle" in confirm
    response = owner_client.post(delete)
    assert response.status_code == 302 and response["Location"] == url("environments", world)
    assert not Environment.objects.filter(tenant=world.a).exists()
    assert not OwnerToggle.objects.exists()
    assert AuditEvent.objects.filter(action="environment.delete", object_id="staging", tenant=world.a).exists()
    assert "“staging” was deleted" in owner_client.get(response["Location"]).content.decode()


def test_deleting_an_environment_that_live_keys_read_is_refused(world, owner_client):
    make_key(world.a, name="staging replica", environment="staging")
    delete = url("environment_delete", world, environment="staging")
    assert "revoke its API keys first" in owner_client.get(delete).content.decode()  # said before trying
    response = owner_client.post(delete)
    assert response.status_code == 409
    assert "revoke its API keys first (1 live: staging replica)" in response.content.decode()
    assert Environment.objects.filter(tenant=world.a, key="staging").exists()


def test_owners_cannot_delete_an_environment_holding_the_platforms_overrides(world, owner_client):
    flag_set_override(tenant=world.a, flag=world.editable, enabled=False, environment="staging", actor=None)
    response = owner_client.post(url("environment_delete", world, environment="staging"))
    assert response.status_code == 409
    assert "the platform team has set overrides in staging" in response.content.decode()
    assert TenantFlag.objects.filter(tenant=world.a, environment="staging").exists()
    assert Environment.objects.filter(tenant=world.a, key="staging").exists()


def test_production_cannot_be_deleted(world, owner_client):
    html = owner_client.get(url("environments", world)).content.decode()
    assert "/environments/production/delete/" not in html
    assert owner_client.post(url("environment_delete", world, environment="production")).status_code == 404


def test_members_see_but_every_environment_write_is_refused(world, member_client):
    before = world_state()
    posts = [
        (url("environments", world), {"key": "dev"}),
        (url("environment_delete", world, environment="staging"), {}),
        (url("environment_promote", world), {"source": "staging", "target": "production", "digest": "0" * 16}),
    ]
    for target, data in posts:
        assert member_client.post(target, data).status_code == 403, target
    assert member_client.get(url("environment_delete", world, environment="staging")).status_code == 403
    assert member_client.get(url("environments", world)).status_code == 200
    assert world_state()[0] == before[0]


def test_another_tenants_environment_is_a_404(world, owner_client):
    for target in (
        url("environment_delete", world, environment="qa"),
        url("environment_delete", world, tenant=world.b, environment="qa"),
        url("environments", world, tenant=world.b),
        url("environment_promote", world, tenant=world.b),
    ):
        assert owner_client.get(target).status_code == 404
        assert owner_client.post(target, {"key": "dev"}).status_code == 404
    assert Environment.objects.filter(tenant=world.b, key="qa").exists()


# ------------------------------------------------------------------ promotion
def promote_url(world, **query):
    query = {"source": "staging", "target": "production", **query}
    return url("environment_promote", world) + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_promote_shows_the_diff_before_applying_and_applies_it(world, owner_client):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    flag_owner_toggle(tenant=world.a, flag=world.risky, enabled=True, actor=world.a_owner)  # production only
    flag_set_override(tenant=world.a, flag=world.locked, enabled=True, environment="staging", actor=None)
    before = world_state()
    html = owner_client.get(promote_url(world)).content.decode()
    assert world_state()[0] == before[0]  # looking writes nothing
    new_ui = re.search(r'<tr id="change-new-ui">.*?</tr>', html, re.S).group(0)
    assert "add" in new_ui and "not set" in new_ui and "on" in new_ui
    auto_merge = re.search(r'<tr id="change-auto-merge">.*?</tr>', html, re.S).group(0)
    assert "remove" in auto_merge
    assert 'id="change-billing-v2"' not in html  # the platform's override is not an owner's to promote
    assert "platform team" in main_of(html) and "overrides" in main_of(html)
    digest = environment_diff(tenant=world.a, source="staging", target="production", layers=[OWNER_TOGGLES]).digest
    assert f'name="digest" value="{digest}"' in html

    response = owner_client.post(
        url("environment_promote", world), {"source": "staging", "target": "production", "digest": digest}
    )
    assert response.status_code == 302
    assert response["Location"] == url("features", world)
    assert OwnerToggle.objects.get(environment="production", flag=world.editable).enabled is True
    assert not OwnerToggle.objects.filter(environment="production", flag=world.risky).exists()
    assert not TenantFlag.objects.filter(environment="production").exists()
    event = AuditEvent.objects.get(action="environment.promote")
    assert event.actor_user == world.a_owner and event.object_id == "production"
    assert flags_evaluate(world.a)["new-ui"].enabled is True
    html = owner_client.get(response["Location"]).content.decode()
    assert "Promoted staging to production: 2 changes" in html


def test_a_stale_diff_is_refused_and_the_new_one_shown(world, admin_client_a):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    digest = environment_diff(tenant=world.a, source="staging", target="production", layers=[OWNER_TOGGLES]).digest
    flag_owner_toggle(tenant=world.a, flag=world.risky, enabled=True, environment="staging", actor=world.a_owner)
    response = admin_client_a.post(
        url("environment_promote", world), {"source": "staging", "target": "production", "digest": digest}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since this diff was shown" in html
    assert 'id="change-auto-merge"' in html and 'id="change-new-ui"' in html
    fresh = environment_diff(tenant=world.a, source="staging", target="production", layers=[OWNER_TOGGLES]).digest
    assert f'name="digest" value="{fresh}"' in html
    assert not OwnerToggle.objects.filter(environment="production").exists()
    assert not AuditEvent.objects.filter(action="environment.promote").exists()


def test_an_empty_diff_says_nothing_to_promote(world, owner_client):
    html = owner_client.get(promote_url(world)).content.decode()
    assert "Nothing to promote" in html and "Promote to production" not in html


def test_promote_from_production_to_staging(world, owner_client):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, actor=world.a_owner)
    digest = environment_diff(tenant=world.a, source="production", target="staging", layers=[OWNER_TOGGLES]).digest
    response = owner_client.post(
        url("environment_promote", world), {"source": "production", "target": "staging", "digest": digest}
    )
    assert response["Location"] == url("features", world) + "?env=staging"
    assert OwnerToggle.objects.get(environment="staging").enabled is True


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"target": "staging"}, "pick an environment other than the source"),
        ({"source": "nope"}, "Select a valid choice"),
        ({"target": "qa"}, "Select a valid choice"),
        ({"source": ""}, "Choose the environment to promote from"),
    ],
)
def test_a_bad_pair_is_a_form_error(world, owner_client, query, message):
    response = owner_client.get(promote_url(world, **query))
    assert response.status_code == 400
    assert message in response.content.decode()
    response = owner_client.post(
        url("environment_promote", world), {"source": "staging", "target": "production", "digest": "x", **query}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not AuditEvent.objects.filter(action="environment.promote").exists()


def test_owners_promote_their_toggles_of_a_flag_that_requires_approval(world, owner_client):
    # As a direct toggle: approval gates the platform's changes, and owners' toggles stay within its bounds.
    flag_update(flag=world.editable, actor=None, requires_approval=True)
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    digest = environment_diff(tenant=world.a, source="staging", target="production", layers=[OWNER_TOGGLES]).digest
    response = owner_client.post(
        url("environment_promote", world), {"source": "staging", "target": "production", "digest": digest}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert OwnerToggle.objects.get(environment="production", flag=world.editable).enabled is True


def test_members_see_the_diff_but_no_confirm_button(world, member_client):
    flag_owner_toggle(tenant=world.a, flag=world.editable, enabled=True, environment="staging", actor=world.a_owner)
    html = member_client.get(promote_url(world)).content.decode()
    assert 'id="change-new-ui"' in html and 'name="digest"' not in html


# ------------------------------------------------------------------ API keys
def test_a_key_is_issued_for_the_chosen_environment_and_listed_with_it(world, owner_client):
    html = owner_client.get(url("keys", world)).content.decode()
    select = re.search(r'<select name="environment".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="production" selected>', select) and "staging" in select and "qa" not in select
    response = owner_client.post(
        url("keys", world), {"name": "stage", "scopes": ["flags:read"], "environment": "staging"}
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="stage")
    assert key.environment == "staging"
    html = owner_client.get(url("keys", world)).content.decode()
    row = html.split(">stage<")[1].split("</tr>")[0]
    assert 'data-label="Environment"' in row and "staging" in row
    assert "production" in html.split("acme replica")[1].split("</tr>")[0]


def test_a_key_defaults_to_production(world, owner_client):
    owner_client.post(url("keys", world), {"name": "plain", "scopes": ["flags:read"]})
    assert ApiKey.objects.get(name="plain").environment == "production"


@pytest.mark.parametrize("env", ["qa", "nope", "x" * 300])
def test_a_key_for_an_unknown_environment_is_a_form_error(world, owner_client, env):
    response = owner_client.post(url("keys", world), {"name": "k", "scopes": ["flags:read"], "environment": env})
    assert response.status_code == 400
    assert "id_environment_error" in response.content.decode()
    assert not ApiKey.objects.filter(name="k").exists()
