"""In process, with every logger at DEBUG: no secret reaches a log record, plain or JSON, with Redis up or killed."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from agentapi_admin.logformat import JsonFormatter, RequestContextFilter
from tenants.services.tenants import tenant_set_upstream_credentials

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

UPSTREAM = "upstream-credential-7f3a9c"


def test_no_secret_in_log_records(world, caplog, redis_server):
    caplog.set_level(logging.DEBUG)
    tenant_set_upstream_credentials(tenant=world.a, secret=UPSTREAM, actor=None)
    root = get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)
    admin, owner, api = Client(), Client(), Client()
    admin.post("/admin/login/", {"username": "root", "password": "wrong-" + PASSWORD})
    admin.force_login(root)
    owner.force_login(world.a_owner)
    issued = owner.post(
        reverse("portal:keys", kwargs={"tenant": world.a.slug}), {"name": "ci", "scopes": ["config:read"]}
    )
    assert issued.status_code == 200
    for _ in range(2):
        api.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {world.a_secret}")
        api.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {world.b_secret[:-1]}x")
        admin.get(f"/admin/tenants/tenant/{world.a.pk}/change/")
        admin.get("/admin/ops/redis/?format=json")
        redis_server.kill()  # second round: the failure paths log too
    Client().post("/portal/login/", {"username": world.a_owner.username, "password": PASSWORD})
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    # LOG_FORMAT=json writes what JsonFormatter makes of each record, request context included.
    as_json = [JsonFormatter().format(r) for r in caplog.records if RequestContextFilter().filter(r)]
    assert any('"request_id"' in line for line in as_json)
    logged += "\n".join(as_json)
    for secret in (
        world.a_secret,
        world.b_secret,
        world.b_secret[:-1],
        UPSTREAM,
        PASSWORD,
        settings.TENANTS_TOKEN_ENCRYPTION_KEY.hex(),
        settings.SECRET_KEY,
    ):
        assert secret not in logged
