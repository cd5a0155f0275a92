"""Every portal page renders for every role, with the landmarks and labels a screen reader needs."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from .conftest import client_for

PAGES = ["tenant_home", "features", "keys", "members", "usage", "environments", "environment_promote"]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["a_owner", "a_admin", "a_member"])
@pytest.mark.parametrize("page", PAGES)
def test_tenant_pages_render_for_every_role(world, who, page):
    client = client_for(getattr(world, who))
    response = client.get(reverse(f"portal:{page}", kwargs={"tenant": world.a.slug}))
    assert response.status_code == 200
    html = response.content.decode()
    for landmark in ("<header", "<main", "<footer", 'aria-current="page"', 'class="skip-link"'):
        assert landmark in html
    assert world.b.name not in html
    assert "<script>" not in html and " style=" not in html  # CSP: no inline script or style


@pytest.mark.django_db
def test_every_form_control_has_a_label(world, owner_client):
    for page in PAGES:
        html = owner_client.get(reverse(f"portal:{page}", kwargs={"tenant": world.a.slug})).content.decode()
        labels = set(re.findall(r'<label[^>]*for="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag or 'type="checkbox"' in tag or 'type="radio"' in tag:
                continue  # checkboxes and radios sit inside their <label>
            control_id = re.search(r'id="([^"]+)"', tag)
            assert control_id and control_id.group(1) in labels, f"{page}: unlabelled {tag}"


@pytest.mark.django_db
def test_index_lists_tenants_and_single_membership_redirects(world):
    single = client_for(world.a_member)
    response = single.get(reverse("portal:index"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:tenant_home", kwargs={"tenant": world.a.slug})

    from tenants.services.memberships import membership_add

    membership_add(tenant=world.b, user=world.a_member, role="member", actor=None)
    response = single.get(reverse("portal:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert world.a.name in html and world.b.name in html


@pytest.mark.django_db
def test_switcher_lists_only_the_users_tenants(world, owner_client):
    html = owner_client.get(reverse("portal:features", kwargs={"tenant": world.a.slug})).content.decode()
    assert reverse("portal:tenant_home", kwargs={"tenant": world.a.slug}) in html
    assert reverse("portal:tenant_home", kwargs={"tenant": world.b.slug}) not in html


@pytest.mark.django_db
def test_account_page_lists_sessions(world, owner_client):
    response = owner_client.get(reverse("portal:account"))
    assert response.status_code == 200
    assert "Log out everywhere" in response.content.decode()


@pytest.mark.django_db
def test_field_errors_are_announced_with_their_field(world, owner_client):
    html = owner_client.post(reverse("portal:keys", kwargs={"tenant": world.a.slug}), {"name": ""}).content.decode()
    control = re.search(r'<input[^>]*name="name"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in control
    described_by = re.search(r'aria-describedby="([^"]+)"', control).group(1).split()
    for element_id in described_by:
        assert f'id="{element_id}"' in html, f"aria-describedby points at missing #{element_id}"
    assert "id_name_error" in described_by


@pytest.mark.django_db
def test_a_deleted_tenant_disappears_and_a_suspended_one_says_so(world, owner_client):
    from tenants.services.tenants import tenant_offboard, tenant_suspend

    tenant_suspend(tenant=world.a, reason="unpaid invoice", actor=None)
    html = owner_client.get(reverse("portal:tenant_home", kwargs={"tenant": world.a.slug})).content.decode()
    assert "This tenant is suspended: unpaid invoice" in html
    tenant_offboard(tenant=world.a, reason="closed", actor=None)
    assert owner_client.get(reverse("portal:tenant_home", kwargs={"tenant": world.a.slug})).status_code == 404
    response = owner_client.get(reverse("portal:index"))
    assert response.status_code == 200 and world.a.name not in response.content.decode()


@pytest.mark.django_db
def test_list_pages_make_a_bounded_number_of_queries(world, owner_client, django_assert_max_num_queries):
    from tenants.services.memberships import membership_add
    from tests.tenants.factories import make_key, make_user

    for n in range(15):
        make_key(world.a, name=f"key {n}")
        membership_add(tenant=world.a, user=make_user(f"extra-{n}"), role="member", actor=None)
    for page in PAGES:
        url = reverse(f"portal:{page}", kwargs={"tenant": world.a.slug})
        owner_client.get(url)  # warm the session activity and the flag cache
        # User, membership, switcher and the page's own reads (sessions live in Redis): never one per row.
        with django_assert_max_num_queries(6):
            assert owner_client.get(url).status_code == 200
