"""Typed flags in the portal: values and layers on the features page, variant picks within bounds, evaluation."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tenants.models import OwnerToggle, TenantFlag
from tenants.selectors import flags_evaluate
from tenants.services.flags import flag_create, flag_set_override, segment_create

from .conftest import client_for
from .sweep import world_state

pytestmark = pytest.mark.django_db

VARIANTS = [
    {"key": "classic", "value": "classic", "weight": 0},
    {"key": "express", "value": "one page", "weight": 0},
    {"key": "wizard", "value": "steps", "weight": 0},
]


@pytest.fixture
def checkout(world):
    flag = flag_create(
        key="checkout",
        description="Checkout flow",
        default=True,
        tenant_editable=True,
        kind="string",
        default_value="classic",
        variants=VARIANTS,
        actor=None,
    )
    flag_set_override(
        tenant=world.a, flag=flag, enabled=True, rollout_percent=30, owner_variants=["express", "wizard"], actor=None
    )
    return flag


def row_of(html: str, key: str) -> str:
    return re.search(rf'<tr id="flag-{re.escape(key)}">.*?</tr>', html, re.S).group(0)


def test_features_show_kind_value_percentage_and_both_layers(world, owner_client, checkout):
    html = owner_client.get(reverse("portal:features", kwargs={"tenant": "acme"})).content.decode()
    row = row_of(html, "checkout")
    assert 'badge-kind">string<' in row and "30 %" in row
    assert "platform: 30 % rollout (owners may pick express, wizard)" in row
    assert "Choose…" in row
    OwnerToggle.objects.create(tenant=world.a, flag=checkout, enabled=True, variant="wizard")
    flag_set_override(
        tenant=world.a, flag=checkout, enabled=True, owner_variants=["express", "wizard"], actor=None
    )  # re-stamps the cached document
    row = row_of(owner_client.get(reverse("portal:features", kwargs={"tenant": "acme"})).content.decode(), "checkout")
    assert "&quot;steps&quot;" in row and "variant wizard" in row
    assert "platform: on (owners may pick express, wizard) · your choice: on, variant wizard" in row


def test_the_confirm_page_shows_what_each_variant_would_do(world, owner_client, checkout):
    page = owner_client.get(reverse("portal:feature_toggle", kwargs={"tenant": "acme", "flag_key": "checkout"}))
    html = page.content.decode()
    assert 'id="variant-choice"' in html
    assert 'value="express"' in html and "Serves &quot;one page&quot; to the 30 % of subjects in the rollout." in html
    assert 'value="classic"' not in html  # not opened to owners
    assert "Your choice never removes the platform team's setting" in html


def test_owner_picks_a_variant_within_the_bounds_and_the_override_stays(world, owner_client, checkout):
    url = reverse("portal:feature_toggle", kwargs={"tenant": "acme", "flag_key": "checkout"})
    response = owner_client.post(url, {"enabled": "true", "variant": "wizard", "confirm": "on"})
    assert response.status_code == 302
    toggle = OwnerToggle.objects.get(tenant=world.a, flag=checkout)
    assert (toggle.enabled, toggle.variant) == (True, "wizard")
    override = TenantFlag.objects.get(tenant=world.a, flag=checkout)
    assert (override.rollout_percent, override.owner_variants) == (30, ["express", "wizard"])
    assert AuditEvent.objects.filter(action="flag.owner_toggle", actor_user=world.a_owner).exists()
    followed = owner_client.get(response["Location"]).content.decode()
    assert "“checkout” is now on, variant wizard for Acme." in followed


def test_a_variant_outside_the_bounds_is_a_form_error_and_changes_nothing(world, owner_client, checkout):
    url = reverse("portal:feature_toggle", kwargs={"tenant": "acme", "flag_key": "checkout"})
    before = world_state()
    response = owner_client.post(url, {"enabled": "true", "variant": "classic", "confirm": "on"})
    assert response.status_code == 400
    assert "is not a variant owners may pick" in response.content.decode()
    assert world_state()[0] == before[0]


def test_members_cannot_pick_a_variant(world, member_client, checkout):
    url = reverse("portal:feature_toggle", kwargs={"tenant": "acme", "flag_key": "checkout"})
    assert member_client.post(url, {"enabled": "true", "variant": "wizard", "confirm": "on"}).status_code == 403
    assert not OwnerToggle.objects.filter(flag=checkout).exists()


# ------------------------------------------------------------------------------------------ evaluate
@pytest.mark.parametrize("user", ["a_owner", "a_admin", "a_member"])
def test_every_member_evaluates_their_tenants_flags(world, checkout, user):
    segment_create(
        key="acme-mobile",
        conditions=[{"attribute": "context.platform", "op": "in", "values": ["ios", "android"]}],
        actor=None,
    )
    flag_create(
        key="dark-mode",
        description="",
        default=False,
        tenant_editable=False,
        rules=[{"segment": "acme-mobile", "serve": {"enabled": True}}],
        actor=None,
    )
    client = client_for(getattr(world, user))
    url = reverse("portal:flag_evaluate", kwargs={"tenant": "acme"})
    assert 'name="context-0-name"' in client.get(url).content.decode()
    html = client.get(
        url, {"subject": "user-9", "context-0-name": "platform", "context-0-value": "ios"}
    ).content.decode()
    dark = re.search(r'<tr id="eval-dark-mode">.*?</tr>', html, re.S).group(0)
    assert "pill-on" in dark and "rule 1 of the flag" in dark
    assert "acme-mobile" not in html  # segments are named by position only in the portal
    assert 'Answers for <span class="mono">user-9</span>' in html
    expected = flags_evaluate(world.a, "user-9", {"platform": "ios"})["checkout"]
    checkout_row = re.search(r'<tr id="eval-checkout">.*?</tr>', html, re.S).group(0)
    assert ("pill-on" in checkout_row) is expected.enabled


def test_evaluate_bad_input_is_a_form_error_and_another_tenant_is_a_404(world, owner_client):
    url = reverse("portal:flag_evaluate", kwargs={"tenant": "acme"})
    response = owner_client.get(url, {"context_json": "[1, 2]"})
    assert response.status_code == 200 and "A JSON object" in response.content.decode()
    assert response.context["rows"] is None
    assert owner_client.get(reverse("portal:flag_evaluate", kwargs={"tenant": "globex"})).status_code == 404
    assert owner_client.post(url, {"subject": "x"}).status_code == 405
