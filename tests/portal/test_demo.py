"""The demo logins of `make run` land in their own tenant's portal and see only it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_demo_owners_use_the_portal(fast_hasher):
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    secrets = json.loads(out.getvalue())["api_keys"]
    for slug, other in (("acme", "globex"), ("globex", "acme")):
        client = Client()
        response = client.post("/portal/login/", {"username": f"{slug}-owner", "password": settings.DEMO_PASSWORD})
        assert response.status_code == 302
        response = client.get("/portal/", follow=True)
        assert response.redirect_chain[-1][0] == f"/portal/t/{slug}/"
        assert "You are owner" in response.content.decode()
        features = client.get(f"/portal/t/{slug}/features/").content.decode()
        assert "Turn on" in features or "Turn off" in features  # the demo has tenant-editable flags
        assert client.get(f"/portal/t/{other}/").status_code == 404
        assert secrets[slug] not in client.get(f"/portal/t/{slug}/keys/").content.decode()
