"""The isolation sweep: every portal URL (from the resolver, so new pages are covered automatically).

A user of tenant A asking for tenant B — by B's slug, or by B's object ids under A's
slug — gets 404 for every method, the page names nothing of B, and neither the
database nor Redis changes. Members get 403 for owner/admin actions; anonymous
visitors are sent to the login page.
"""

from __future__ import annotations

import re

import pytest
from django.test.client import encode_multipart
from django.urls import resolve, reverse

from portal.access import ROLE_RANK, Role

from .conftest import client_for
from .sweep import METHODS, portal_routes, world_state

# Pages outside any tenant; a new one must be added here on purpose (and get its own tests).
UNSCOPED = {
    "index",
    "login",
    "logout",
    "account",
    "invitation",
    "password_change",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# Pages for visitors who cannot sign in (a forgotten password): public, and tested in test_account.py.
PUBLIC = {
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# URL kwargs naming an object that belongs to one tenant.
OWNED_OBJECT_KWARGS = {"key_id", "membership_id", "invitation_id", "endpoint_id", "environment"}


def foreign_kwargs(route, world, tenant_slug):
    """Fill a route's kwargs with tenant B's objects under `tenant_slug`."""
    values = {
        "tenant": tenant_slug,
        "key_id": world.b_key.pk,
        "membership_id": world.b_owner_membership.pk,
        "invitation_id": world.b_invitation.pk,
        "endpoint_id": world.b_endpoint.pk,
        "environment": world.b_qa.key,
        "token": "not-a-real-invitation-token-0123456789abc",
        "uidb64": "MQ",  # a password-reset link: user id 1, base64
        # Flags are global definitions; an editable one is what B's owner could change.
        "flag_key": world.editable.key,
    }
    unknown = set(route.kwargs) - set(values)
    assert not unknown, f"teach the isolation sweep how to fill {sorted(unknown)} for {route.name}"
    return {name: values[name] for name in route.kwargs}


def own_kwargs(route, world):
    """Fill a route's kwargs with tenant A's own objects (for role checks)."""
    values = {
        "tenant": world.a.slug,
        "key_id": world.a_key.pk,
        "membership_id": world.a_member_membership.pk,
        "invitation_id": world.a_invitation.pk,
        "endpoint_id": world.a_endpoint.pk,
        "environment": world.a_staging.key,
        "token": "not-a-real-invitation-token-0123456789abc",
        "uidb64": "MQ",  # a password-reset link: user id 1, base64
        "flag_key": world.editable.key,
    }
    return {name: values[name] for name in route.kwargs}


BOUNDARY = "PortalSweepBoundary"
BODYLESS = {"GET", "HEAD", "OPTIONS"}
# Plausible values for every portal form field, so a missing check would really write something.
POST_DATA = {
    "enabled": "true",
    "confirm": "on",
    "name": "sweep key",
    "scopes": ["config:read"],
    "identifier": "outsider",
    "role": "owner",
    "url": "https://hooks.example.com/sweep",
    "event_types": ["key.issued"],
    "description": "sweep",
    "key": "sweep",
    "environment": "staging",
    "source": "staging",
    "target": "production",
    "digest": "0" * 16,
}


def tenant_routes():
    routes = [route for route in portal_routes() if route.name not in UNSCOPED]
    assert all("tenant" in route.kwargs for route in routes), "every portal page outside UNSCOPED names its tenant"
    return routes


def test_the_sweep_sees_every_portal_page():
    names = {route.name for route in portal_routes()}
    assert {"features", "feature_toggle", "keys", "key_revoke", "members", "member_role", "member_remove"} <= names
    assert {"usage", "tenant_home", "webhooks", "webhook_detail", "webhook_rotate", "webhook_delete"} <= names
    assert {"environments", "environment_delete", "environment_promote"} <= names
    assert names >= UNSCOPED


def test_every_tenant_page_goes_through_the_access_layer(world):
    for route in tenant_routes():
        view = resolve(reverse(f"portal:{route.name}", kwargs=own_kwargs(route, world))).func
        assert hasattr(view, "portal_methods"), f"{route.name} is not wrapped in portal.access.tenant_view"


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MEMBER, Role.OWNER])
def test_foreign_tenant_and_foreign_ids_answer_404_and_change_nothing(world, role):
    user = world.a_member if role == Role.MEMBER else world.a_owner
    client = client_for(user)
    client.get(reverse("portal:tenant_home", kwargs={"tenant": world.a.slug}))  # session activity settles first
    checked = 0
    for route in tenant_routes():
        cases = [foreign_kwargs(route, world, world.b.slug)]
        if OWNED_OBJECT_KWARGS & set(route.kwargs):
            cases.append(foreign_kwargs(route, world, world.a.slug))
        for kwargs in cases:
            url = reverse(f"portal:{route.name}", kwargs=kwargs)
            before = world_state()
            for method in METHODS:
                response = client.generic(method, url, data=_encoded(method), content_type=_ctype(method))
                assert response.status_code == 404, f"{method} {url} as {role}: {response.status_code}"
                body = response.content.decode()
                for secret in (world.b.name, world.b_key.prefix, world.b_owner.username, world.b_endpoint.url):
                    assert secret not in body, f"{method} {url} leaks {secret!r}"
                checked += 1
            assert world_state() == before, f"{url} changed something"
    assert checked >= len(METHODS) * len(tenant_routes())


def _encoded(method):
    return "" if method in BODYLESS else encode_multipart(BOUNDARY, POST_DATA)


def _ctype(method):
    return "application/octet-stream" if method in BODYLESS else f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.django_db
def test_a_foreign_404_is_the_same_page_as_a_missing_one(world, member_client):
    foreign = member_client.get(reverse("portal:features", kwargs={"tenant": world.b.slug}))
    missing = member_client.get(reverse("portal:features", kwargs={"tenant": "no-such-tenant"}))
    assert foreign.status_code == missing.status_code == 404
    # Identical apart from the per-response CSRF mask.
    assert _unmasked(foreign) == _unmasked(missing)


def _unmasked(response):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


@pytest.mark.django_db
def test_members_get_403_for_owner_and_admin_actions_and_nothing_changes(world, member_client):
    member_client.get(reverse("portal:tenant_home", kwargs={"tenant": world.a.slug}))
    refused = 0
    for route in tenant_routes():
        url = reverse(f"portal:{route.name}", kwargs=own_kwargs(route, world))
        view = resolve(url).func
        for method in sorted(view.portal_methods):
            required = view.portal_read_role if method in ("GET", "HEAD") else view.portal_write_role
            if ROLE_RANK[required] <= ROLE_RANK[Role.MEMBER]:
                continue
            before = world_state()
            response = member_client.generic(method, url, data=_encoded(method), content_type=_ctype(method))
            assert response.status_code == 403, f"member {method} {url}: {response.status_code}"
            assert world_state() == before, f"member {method} {url} changed something"
            refused += 1
    # Flag toggles, key create/revoke, member add/role/remove at least.
    assert refused >= 6


@pytest.mark.django_db
def test_admins_cannot_manage_members(world, admin_client_a):
    for name, kwargs in [
        ("members", {}),
        ("member_role", {"membership_id": world.a_member_membership.pk}),
        ("member_remove", {"membership_id": world.a_member_membership.pk}),
        ("invitation_revoke", {"invitation_id": world.a_invitation.pk}),
    ]:
        url = reverse(f"portal:{name}", kwargs={"tenant": world.a.slug, **kwargs})
        response = admin_client_a.post(url, POST_DATA)
        assert response.status_code == 403, name


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_page(world, client):
    login = reverse("portal:login")
    for route in portal_routes():
        if route.name in PUBLIC:
            continue
        url = reverse(f"portal:{route.name}", kwargs=foreign_kwargs(route, world, world.a.slug))
        for method in ("GET", "POST"):
            before = world_state()
            response = client.generic(method, url, data=_encoded(method), content_type=_ctype(method))
            assert response.status_code == 302, f"anonymous {method} {url}: {response.status_code}"
            assert response["Location"].startswith(f"{login}?next="), response["Location"]
            assert world_state() == before


@pytest.mark.django_db
def test_users_without_any_membership_see_no_tenant(world):
    client = client_for(world.outsider)
    response = client.get(reverse("portal:index"))
    assert response.status_code == 200
    assert world.a.name not in response.content.decode() and world.b.name not in response.content.decode()
    assert client.get(reverse("portal:features", kwargs={"tenant": world.a.slug})).status_code == 404


def isolation_request_count() -> int:
    """Return how many requests the foreign-id sweep sends, over both roles it runs as."""
    per_role = sum((2 if OWNED_OBJECT_KWARGS & set(route.kwargs) else 1) * len(METHODS) for route in tenant_routes())
    return 2 * per_role


def test_security_doc_states_the_isolation_sweep_count():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    routes = len(tenant_routes())
    expected = (
        f"- Portal isolation: {routes} tenant pages \u00d7 {len(METHODS)} methods \u00d7 foreign tenant and "
        f"foreign ids, as member and owner = {isolation_request_count()} requests"
    )
    assert expected in doc, f"docs/security.md should say:\n{expected}"
