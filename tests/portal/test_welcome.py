"""The site's front door: `/` offers admin and portal sign-in, the admin's "View site" leads there, a favicon."""

import pytest
from django.test import Client

from tests.tenants.factories import make_user

pytestmark = pytest.mark.django_db


def test_root_is_a_sign_in_chooser():
    response = Client().get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'href="/admin/"' in body
    assert 'href="/portal/"' in body


def test_admin_view_site_points_at_the_chooser():
    client = Client()
    client.force_login(make_user("staffer", is_staff=True, is_superuser=True))
    body = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in body


def test_favicon_is_served_as_a_static_file():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # ICO header
