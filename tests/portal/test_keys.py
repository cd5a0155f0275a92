"""API keys page: create with name, scopes and expiry (secret shown once), list with last use, revoke."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tenants.keys import apikey_used_key
from tenants.models import ApiKey
from tenants.services.apikeys import KEY_PATTERN, apikey_hash

from .sweep import world_state

pytestmark = pytest.mark.django_db


def keys_url(world):
    return reverse("portal:keys", kwargs={"tenant": world.a.slug})


def revoke_url(world, key):
    return reverse("portal:key_revoke", kwargs={"tenant": world.a.slug, "key_id": key.pk})


def test_owner_creates_a_key_and_sees_the_secret_once(world, owner_client):
    expires = (timezone.now() + dt.timedelta(days=30)).date()
    response = owner_client.post(
        keys_url(world), {"name": "ci runner", "scopes": ["config:read"], "expires_on": expires.isoformat()}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = re.search(r'id="new-secret"[^>]*value="([^"]+)"', html).group(1)
    assert KEY_PATTERN.match(secret)
    key = ApiKey.objects.get(secret_hash=apikey_hash(secret))
    assert key.tenant == world.a and key.name == "ci runner" and key.scopes == ["config:read"]
    assert key.expires_at == dt.datetime.combine(expires, dt.time.min, tzinfo=dt.UTC)
    assert key.created_by == world.a_owner
    assert AuditEvent.objects.filter(action="apikey.issue", object_id=str(key.pk)).exists()
    assert 'data-copy-target="new-secret"' in html  # the copy button (shown by portal.js)
    # Shown once: the list never contains it again.
    assert secret not in owner_client.get(keys_url(world)).content.decode()


def test_admin_can_create_but_member_only_sees(world, admin_client_a, member_client):
    assert admin_client_a.post(keys_url(world), {"name": "x", "scopes": ["flags:read"]}).status_code == 200
    html = member_client.get(keys_url(world)).content.decode()
    assert "acme replica" in html and "Create a key" not in html and "Revoke" not in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "scopes": ["config:read"]}, "Give the key a name"),
        ({"name": "x" * 101, "scopes": ["config:read"]}, "at most 100 characters"),
        ({"name": "x" * 100_000, "scopes": ["config:read"]}, "at most 100 characters"),
        ({"name": "bad\x07name", "scopes": ["config:read"]}, "control characters"),
        ({"name": "ok"}, "Choose at least one scope"),
        ({"name": "ok", "scopes": ["admin:all"]}, "is not a scope"),
        ({"name": "ok", "scopes": ["config:read"], "expires_on": "2020-01-01"}, "after today"),
        ({"name": "ok", "scopes": ["config:read"], "expires_on": "9999-12-31"}, "at most five years"),
        ({"name": "ok", "scopes": ["config:read"], "expires_on": "tomorrow"}, "YYYY-MM-DD"),
        ({"name": "ok", "scopes": ["config:read"], "expires_on": "2026-02-31"}, "YYYY-MM-DD"),
    ],
)
def test_create_errors_are_explained_and_nothing_is_written(world, owner_client, data, message):
    owner_client.get(keys_url(world))
    before = world_state()
    response = owner_client.post(keys_url(world), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "The key was not created" in html
    assert world_state() == before


def test_list_shows_prefix_scopes_and_last_use(world, owner_client, redis_client):
    html = owner_client.get(keys_url(world)).content.decode()
    row = html.split("acme replica")[1].split("</tr>")[0]
    assert f"{world.a_key.prefix}…" in row and "config:read" in row and "never" in row
    # A real request: its use is recorded in Redis and shown before any flush reaches the database.
    assert Client().get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {world.a_secret}").status_code == 200
    recorded_ms = int(redis_client.hget(apikey_used_key(world.a.slug, world.a.pk), world.a_key.pk))
    assert ApiKey.objects.get(pk=world.a_key.pk).last_used_at is None
    html = owner_client.get(keys_url(world)).content.decode()
    row = html.split("acme replica")[1].split("</tr>")[0]
    assert dt.datetime.fromtimestamp(recorded_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M") in row
    assert world.a_secret not in html


def test_revoke_confirms_then_revokes(world, owner_client):
    response = owner_client.get(revoke_url(world, world.a_key))
    assert response.status_code == 200 and "Revoke “acme replica”?" in response.content.decode()
    response = owner_client.post(revoke_url(world, world.a_key))
    assert response.status_code == 302
    world.a_key.refresh_from_db()
    assert world.a_key.revoked_at is not None
    assert AuditEvent.objects.filter(action="apikey.revoke", object_id=str(world.a_key.pk)).count() == 1
    # Revoking twice is harmless and says so.
    response = owner_client.post(revoke_url(world, world.a_key), follow=True)
    assert "already revoked" in response.content.decode()
    assert AuditEvent.objects.filter(action="apikey.revoke", object_id=str(world.a_key.pk)).count() == 1


@pytest.mark.parametrize("key_id", ["0", "999999999", "999999999999999999"])
def test_unknown_key_ids_are_404(world, owner_client, key_id):
    url = f"/portal/t/acme/keys/{key_id}/revoke/"
    assert owner_client.post(url).status_code == 404


@pytest.mark.parametrize("path", ["abc/revoke/", "-1/revoke/", "1" * 19 + "/revoke/", "%00/revoke/"])
def test_malformed_key_ids_are_404(world, owner_client, path):
    assert owner_client.post(f"/portal/t/acme/keys/{path}").status_code == 404
