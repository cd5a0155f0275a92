"""purge_tenant_cache: bumps the version and drops only the flag and API-key cache entries of the tenant(s)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_LOCKED, EXIT_REDIS_DOWN
from audit.models import AuditEvent
from resilience.connection import key
from tenants.api.gateway import gateway_call
from tenants.cache import apikey_key, flags_key, version_key
from tenants.models import Tenant
from tenants.services.apikeys import apikey_hash
from tests.commands.conftest import db_state, redis_state, run_json
from tests.tenants.factories import make_key, make_plan, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def warm(redis_client):
    """Two tenants whose API keys were used, so their flag documents and key entries are cached."""
    plan = make_plan("std")
    out = {}
    for slug in ("acme", "globex"):
        tenant = make_tenant(slug, plan=plan)
        _, secret = make_key(tenant)
        assert gateway_call(secret).outcome == "ok"
        out[slug] = (Tenant.objects.get(pk=tenant.pk), apikey_hash(secret))
    redis_client.set(key("cache", "unrelated"), "1")
    redis_client.set(key("usage", "x", "20260101"), "1")
    return out


def cached(redis_client, tenant, secret_hash) -> tuple[bool, bool]:
    return (
        bool(redis_client.exists(flags_key(tenant.pk, tenant.cache_version))),
        bool(redis_client.exists(apikey_key(secret_hash))),
    )


def test_one_tenant(warm, redis_client):
    (acme, acme_hash), (globex, globex_hash) = warm["acme"], warm["globex"]
    assert cached(redis_client, acme, acme_hash) == (True, True)
    summary = run_json("purge_tenant_cache", "--tenant", "acme", "--reason", "flag edited in SQL")
    assert (summary["tenants"], summary["flag_documents"], summary["apikey_entries"]) == (1, 1, 1)
    assert cached(redis_client, acme, acme_hash) == (False, False)
    assert cached(redis_client, globex, globex_hash) == (True, True), "the other tenant is untouched"
    bumped = Tenant.objects.get(pk=acme.pk).cache_version
    assert bumped == acme.cache_version + 1
    assert int(redis_client.get(version_key(acme.pk))) == bumped, "the new version is published"
    event = AuditEvent.objects.get(action="tenant.cache_purge")
    assert (event.tenant_id, event.actor_label, event.reason) == (acme.pk, "system", "flag edited in SQL")
    assert redis_client.exists(key("cache", "unrelated"), key("usage", "x", "20260101")) == 2


def test_all_tenants(warm, redis_client):
    summary = run_json("purge_tenant_cache", "--all")
    assert (summary["tenants"], summary["flag_documents"], summary["apikey_entries"]) == (2, 2, 2)
    for tenant, secret_hash in warm.values():
        assert cached(redis_client, tenant, secret_hash) == (False, False)
    assert AuditEvent.objects.filter(action="tenant.cache_purge").count() == 2
    assert redis_client.exists(key("cache", "unrelated")) == 1


def test_dry_run_counts_and_changes_nothing(warm, redis_client):
    before = (redis_state(redis_client), db_state())
    summary = run_json("purge_tenant_cache", "--all", "--dry-run")
    assert (summary["tenants"], summary["flag_documents"], summary["apikey_entries"]) == (2, 2, 2)
    assert (redis_state(redis_client), db_state()) == before


def test_tenant_or_all_is_required_and_unknown_slugs_are_named(warm):
    with pytest.raises(CommandError, match="one of the arguments --tenant --all is required"):
        run_json("purge_tenant_cache")
    with pytest.raises(CommandError, match=r"Unknown tenant 'acmee'. Did you mean: acme"):
        run_json("purge_tenant_cache", "--tenant", "acmee")


def test_lock_and_redis_down(warm, redis_client, redis_server):
    held = redis_client.lock(key("lock", "purge_tenant_cache"), timeout=30)
    assert held.acquire(blocking=False)
    with pytest.raises(CommandError) as excinfo:
        run_json("purge_tenant_cache", "--all")
    assert excinfo.value.returncode == EXIT_LOCKED
    held.release()
    redis_server.kill()
    with pytest.raises(CommandError, match="Redis is unreachable") as excinfo:
        run_json("purge_tenant_cache", "--all")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
