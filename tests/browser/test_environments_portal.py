"""Environments in real Chromium: add staging, change a feature there, promote it to production; phone layout."""

from __future__ import annotations

import pytest

from resilience.breakers.process import redis_breaker
from tenants.models import Environment, OwnerToggle
from tenants.selectors import flags_evaluate
from tests.browser.conftest import login
from tests.portal.conftest import PASSWORD, build_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    redis_breaker.reset()
    world = build_world()
    # This story starts before any environment: the owner adds staging through the page.
    Environment.objects.filter(tenant=world.a).delete()
    return world


def row(page, key):
    return page.locator(f"#flag-{key}")


def test_owner_adds_staging_changes_it_and_promotes_it(world, page, live_server, screenshot, console_errors):
    login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
    page.wait_for_url("**/portal/t/acme/")
    page.get_by_role("navigation", name="Acme sections").get_by_role("link", name="Environments").click()
    page.wait_for_url("**/portal/t/acme/environments/")
    assert page.locator("#env-production").is_visible()
    page.get_by_label("Key", exact=True).fill("staging")
    page.get_by_label("Name", exact=True).fill("Staging")
    page.get_by_role("button", name="Add environment").click()
    page.wait_for_url("**/portal/t/acme/environments/")
    assert "“staging” was added" in page.locator(".messages").inner_text()
    assert page.locator("#env-staging").is_visible()
    screenshot("environments")

    # Switch the features page to staging and turn new-ui on there only.
    page.get_by_role("link", name="Features of staging").click()
    page.wait_for_url("**/portal/t/acme/features/?env=staging")
    picker = page.get_by_role("navigation", name="Environment")
    assert picker.locator("[aria-current=page]").inner_text() == "staging"
    row(page, "new-ui").get_by_role("button", name="Turn on new-ui").click()
    page.wait_for_url("**/portal/t/acme/features/?env=staging#flag-new-ui")
    assert row(page, "new-ui").locator(".pill").inner_text() == "On"
    screenshot("features-staging")
    picker.get_by_role("link", name="production").click()
    page.wait_for_url("**/portal/t/acme/features/")
    assert row(page, "new-ui").locator(".pill").inner_text() == "Off"

    # Promote staging → production: the diff first, then the confirmation.
    page.goto(f"{live_server.url}/portal/t/acme/environments/promote/")
    page.get_by_label("From", exact=True).select_option("staging")
    page.get_by_label("To", exact=True).select_option("production")
    page.get_by_role("button", name="Show changes").click()
    page.wait_for_url("**/environments/promote/?source=staging&target=production*")
    change = page.locator("#change-new-ui")
    assert "add" in change.inner_text() and "not set" in change.inner_text() and "on" in change.inner_text()
    assert OwnerToggle.objects.filter(tenant=world.a, environment="production").count() == 0  # nothing applied yet
    screenshot("promote-diff")
    page.get_by_role("button", name="Promote to production").click()
    page.wait_for_url("**/portal/t/acme/features/")
    assert "Promoted staging to production: 1 change" in page.locator(".messages").inner_text()
    assert row(page, "new-ui").locator(".pill").inner_text() == "On"
    assert flags_evaluate(world.a)["new-ui"].enabled is True
    screenshot("features-production-after-promote")
    assert console_errors == []


def test_environments_pages_fit_a_phone(world, browser, live_server, request):
    from tenants.services.environments import environment_create
    from tenants.services.flags import flag_owner_toggle
    from tests.browser.conftest import ARTIFACTS

    environment_create(tenant=world.a, key="staging-eu-central-long-name", name="Staging (EU)", actor=None)
    flag_owner_toggle(
        tenant=world.a,
        flag=world.editable,
        enabled=True,
        environment="staging-eu-central-long-name",
        actor=world.a_owner,
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, live_server, "/portal/login/", "a-owner", PASSWORD)
        page.wait_for_url("**/portal/t/acme/")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        env = "staging-eu-central-long-name"
        for name, path, shown in [
            ("environments", "environments/", f"#env-{env}"),
            ("promote", f"environments/promote/?source={env}&target=production", "#change-new-ui"),
            ("features-env", f"features/?env={env}", "#flag-new-ui"),
            ("delete", f"environments/{env}/delete/", "button.danger"),
            ("keys", "keys/", "#id_environment"),
            ("evaluate", f"evaluate/?env={env}&subject=user-1", "#eval-new-ui"),
        ]:
            page.goto(f"{live_server.url}/portal/t/acme/{path}")
            page.screenshot(path=str(ARTIFACTS / f"portal-{name}-390px.png"), full_page=True)
            assert page.locator(shown).is_visible(), name
            # The page never scrolls sideways (a table may scroll inside its own frame).
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    finally:
        context.close()
