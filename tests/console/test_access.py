"""Every ops page and JSON twin is staff-only; actions need the operate permission."""

import pytest
from django.urls import reverse

PAGES = ["/admin/ops/redis/", "/admin/ops/ratelimits/", "/admin/ops/breakers/", "/admin/ops/sessions/"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.django_db
def test_anonymous_gets_the_login_page_or_403(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    twin = client.get(path, {"format": "json"})
    assert twin.status_code == 403 and twin.json()["error"] == "Staff login required."


@pytest.mark.parametrize("path", PAGES)
def test_non_staff_gets_the_login_page_or_403(client, customer, path):
    client.force_login(customer)
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert client.get(path, {"format": "json"}).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_staff_sees_every_page_and_its_json_twin(client, viewer, path):
    client.force_login(viewer)
    response = client.get(path)
    assert response.status_code == 200
    assert b'id="ops-live"' in response.content and b"htmx.min.js" in response.content
    assert b'href="/admin/"' in response.content  # breadcrumbs back to the admin index
    twin = client.get(path, {"format": "json"})
    assert twin.status_code == 200 and twin["Content-Type"] == "application/json"


def test_admin_index_links_every_page(client, viewer):
    client.force_login(viewer)
    html = client.get("/admin/").content.decode()
    for label in ("Redis health", "Rate-limit counters", "Circuit breakers", "Sessions"):
        assert label in html
    for name, path in [("redishealthpage", "/admin/ops/redis/"), ("sessionspage", "/admin/ops/sessions/")]:
        assert client.get(f"/admin/console/{name}/")["Location"] == path


def test_the_index_entries_old_addresses_redirect(client, viewer):
    client.force_login(viewer)
    old = client.get("/admin/resilience/redishealthpage/")
    assert old.status_code == 301 and old["Location"] == "/admin/console/redishealthpage/"
    assert client.get(old["Location"])["Location"] == "/admin/ops/redis/"


@pytest.mark.parametrize(
    "path", ["/admin/ops/sessions/revoke/?user=1&ref=0123456789abcdef", "/admin/ops/sessions/revoke-all/?user=1"]
)
def test_actions_need_the_operate_permission(client, viewer, path):
    client.force_login(viewer)
    assert client.get(path).status_code == 403
    assert client.post(path, {"reason": "because"}).status_code == 403
    html = client.get("/admin/ops/sessions/", {"user": viewer.pk}).content
    assert b"Revoke" not in html


def test_htmx_poll_gets_only_the_live_region(client, viewer):
    client.force_login(viewer)
    response = client.get("/admin/ops/sessions/?q=view", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ops-live"') and "<html" not in html
    # The poll URL keeps the filter, so a refresh never loses it.
    assert 'hx-get="/admin/ops/sessions/?q=view"' in html
