"""API-key last use: recorded in Redis by the gateway, flushed to the database in batches, shown at once."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone

from agentapi_admin.command import EXIT_REDIS_DOWN
from tenants.api.gateway import gateway_call
from tenants.keys import apikey_used_key
from tenants.models import ApiKey

from .factories import make_key, make_staff, make_tenant

pytestmark = pytest.mark.django_db

NOW_MS = 1_800_000_000_000


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def flush(capsys, *args):
    call_command("flush_apikey_last_used", "--json", *args)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def shown(ms: int) -> str:
    """Return a time as Django's templates render it (the portal)."""
    return formats.localize(timezone.template_localtime(at(ms)))


def admin_shown(ms: int) -> str:
    """Return a time as the admin's lists and pages render it (`admin_time`: a compact UTC stamp)."""
    return at(ms).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


@pytest.fixture
def acme():
    tenant = make_tenant("acme")
    api_key, secret = make_key(tenant)
    return tenant, api_key, secret


def test_no_request_writes_sql_and_redis_records_the_use(acme, redis_client):
    tenant, api_key, secret = acme
    client = Client()
    with CaptureQueriesContext(connection) as cold:
        response = client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert writes(cold.captured_queries) == []  # even the request that fills the cache only reads
    recorded = int(redis_client.hget(apikey_used_key(tenant.slug, tenant.pk), api_key.pk))
    assert abs(recorded - datetime.now(UTC).timestamp() * 1000) < 5_000
    assert redis_client.ttl(apikey_used_key(tenant.slug, tenant.pk)) > 0
    with CaptureQueriesContext(connection) as warm:
        for _ in range(3):
            assert client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert warm.captured_queries == []
    api_key.refresh_from_db()
    assert api_key.last_used_at is None  # the database learns it from the flush


def test_a_use_is_recorded_at_most_once_a_minute_without_sql(acme, redis_client):
    tenant, api_key, secret = acme
    gateway_call(secret, now_ms=NOW_MS)
    assert int(redis_client.hget(apikey_used_key(tenant.slug, tenant.pk), api_key.pk)) == NOW_MS
    with CaptureQueriesContext(connection) as warm:
        assert gateway_call(secret, now_ms=NOW_MS + 30_000).outcome == "ok"
        assert int(redis_client.hget(apikey_used_key(tenant.slug, tenant.pk), api_key.pk)) == NOW_MS
        assert gateway_call(secret, now_ms=NOW_MS + 61_000).outcome == "ok"
    assert warm.captured_queries == []
    assert int(redis_client.hget(apikey_used_key(tenant.slug, tenant.pk), api_key.pk)) == NOW_MS + 61_000


def test_flush_copies_redis_to_the_database_idempotently_and_never_backwards(capsys, acme, redis_client):
    tenant, api_key, secret = acme
    other_key, _ = make_key(tenant, name="second")
    globex = make_tenant("globex")
    globex_key, globex_secret = make_key(globex)
    gateway_call(secret, now_ms=NOW_MS)
    gateway_call(globex_secret, now_ms=NOW_MS + 5_000)
    ApiKey.objects.filter(pk=other_key.pk).update(last_used_at=at(NOW_MS + 90_000))
    redis_client.hset(apikey_used_key(tenant.slug, tenant.pk), other_key.pk, NOW_MS)  # older than the database: ignored
    dry = flush(capsys, "--dry-run")
    assert dry["dry_run"] is True and dry["keys_updated"] == 2
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is None
    first = flush(capsys)
    assert (first["tenants"], first["keys_seen"], first["keys_updated"]) == (2, 3, 2)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == at(NOW_MS)
    assert ApiKey.objects.get(pk=globex_key.pk).last_used_at == at(NOW_MS + 5_000)
    assert ApiKey.objects.get(pk=other_key.pk).last_used_at == at(NOW_MS + 90_000)
    assert flush(capsys)["keys_updated"] == 0  # idempotent
    gateway_call(secret, now_ms=NOW_MS + 120_000)
    assert flush(capsys)["keys_updated"] == 1
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == at(NOW_MS + 120_000)


def test_flush_ignores_fields_that_name_no_key_of_the_tenant(capsys, acme, redis_client):
    tenant, _, _ = acme
    globex_key, _ = make_key(make_tenant("globex"))
    redis_client.hset(
        apikey_used_key(tenant.slug, tenant.pk), mapping={"not-a-number": NOW_MS, globex_key.pk: NOW_MS, "999999": 1}
    )
    report = flush(capsys)
    assert report["keys_updated"] == 0 and report["skipped"] == 3
    assert ApiKey.objects.get(pk=globex_key.pk).last_used_at is None


def test_flush_with_redis_down_is_a_clear_error_and_loses_nothing(capsys, acme, redis_server, redis_client):
    _, api_key, secret = acme
    gateway_call(secret, now_ms=NOW_MS)
    redis_server.kill()
    with pytest.raises(CommandError, match="REDIS_URL") as failure:
        call_command("flush_apikey_last_used")
    assert failure.value.returncode == EXIT_REDIS_DOWN
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is None


def test_run_maintenance_flushes_last_use(capsys, acme):
    _, api_key, secret = acme
    gateway_call(secret, now_ms=NOW_MS)
    call_command("run_maintenance", "--once")
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == at(NOW_MS)


def test_admin_shows_the_newer_of_database_and_redis(acme):
    _, api_key, secret = acme
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=at(NOW_MS - 3_600_000))
    gateway_call(secret, now_ms=NOW_MS)
    client = Client()
    client.force_login(make_staff("root"))
    listing = client.get("/admin/tenants/apikey/").content.decode()
    assert admin_shown(NOW_MS) in listing and admin_shown(NOW_MS - 3_600_000) not in listing
    detail = client.get(f"/admin/tenants/apikey/{api_key.pk}/change/").content.decode()
    assert shown(NOW_MS) in detail and shown(NOW_MS - 3_600_000) not in detail  # the change form: Django's format
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=at(NOW_MS + 3_600_000))  # the database is newer
    assert admin_shown(NOW_MS + 3_600_000) in client.get("/admin/tenants/apikey/").content.decode()


def test_admin_lists_keys_while_redis_is_down(acme, redis_server):
    _, api_key, _ = acme
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=at(NOW_MS))
    client = Client()
    client.force_login(make_staff("root"))
    redis_server.kill()
    response = client.get("/admin/tenants/apikey/")
    assert response.status_code == 200 and admin_shown(NOW_MS) in response.content.decode()


def test_the_hash_lifetime_is_set_when_a_field_is_created_not_on_every_use(acme, redis_client):
    tenant, api_key, secret = acme
    gateway_call(secret, now_ms=NOW_MS)
    redis_client.expire(apikey_used_key(tenant.slug, tenant.pk), 1000)
    gateway_call(secret, now_ms=NOW_MS + 61_000)  # an update: no EXPIRE
    assert int(redis_client.hget(apikey_used_key(tenant.slug, tenant.pk), api_key.pk)) == NOW_MS + 61_000
    assert redis_client.ttl(apikey_used_key(tenant.slug, tenant.pk)) <= 1000
    _, second_secret = make_key(tenant, name="second")
    gateway_call(second_secret, now_ms=NOW_MS + 62_000)  # a new field: the lifetime is set again
    assert redis_client.ttl(apikey_used_key(tenant.slug, tenant.pk)) > 86_400
