"""reseal_webhook_secrets: signing secrets follow a TOKEN_ENCRYPTION_KEY rotation like upstream credentials."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants import crypto
from webhooks.models import WebhookSecret
from webhooks.selectors import endpoint_active_secrets
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db

KEY_OLD, KEY_NEW, KEY_LOST = (bytes.fromhex(h * 32) for h in ("11", "22", "33"))


def _run(*args) -> dict:
    out = StringIO()
    call_command("reseal_webhook_secrets", "--json", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_secrets_move_to_the_current_key_and_still_sign(settings):
    settings.TENANTS_TOKEN_ENCRYPTION_KEY, settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = KEY_OLD, []
    endpoint, secret = endpoint_create(
        tenant=None, url="https://hooks.example.com/", event_types=["flag.changed"], actor=None
    )
    settings.TENANTS_TOKEN_ENCRYPTION_KEY, settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = KEY_NEW, [KEY_OLD]

    dry = _run("--dry-run")
    assert (dry["resealed"], dry["would_reseal"]) == (0, 1)
    assert crypto.needs_rotation(WebhookSecret.objects.get().sealed)
    done = _run()
    assert (done["resealed"], done["undecryptable"]) == (1, 0)

    settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = []  # the old key can go now
    assert endpoint_active_secrets(endpoint) == [secret]
    assert _run()["resealed"] == 0


def test_a_secret_no_key_opens_is_named_with_the_fix(settings):
    settings.TENANTS_TOKEN_ENCRYPTION_KEY, settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = KEY_LOST, []
    endpoint, _ = endpoint_create(
        tenant=None, url="https://hooks.example.com/", event_types=["flag.changed"], actor=None
    )
    settings.TENANTS_TOKEN_ENCRYPTION_KEY = KEY_NEW
    with pytest.raises(CommandError) as excinfo:
        _run()
    assert excinfo.value.returncode == 1
    assert f"endpoint {endpoint.pk}" in str(excinfo.value) and "rotate" in str(excinfo.value)
