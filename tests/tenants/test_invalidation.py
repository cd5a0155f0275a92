"""No committed change is undone by a Redis outage: revocations, suspensions and flag changes made
while Redis is away (killed, paused, or restarted from an old AOF) hold on the first request after."""

from __future__ import annotations

import json
import shutil
import signal
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from agentapi_admin.redis_process import RedisProcess
from resilience.breakers.process import redis_breaker
from tenants.cache import cache_sync
from tenants.keys import version_key
from tenants.models import ApiKey, OutboxMessage, Tenant
from tenants.services.apikeys import apikey_revoke
from tenants.services.flags import flag_owner_toggle, flag_set_override
from tenants.services.tenants import tenant_suspend

from .factories import make_flag, make_key, make_plan, make_tenant, make_user

pytestmark = pytest.mark.django_db

# Long enough to cover the breaker's reset timeout (0.1 s here) many times over.
POLL_SECONDS = 1.5


@pytest.fixture
def aof_redis(redis_server, tmp_path, settings):
    """The app's Redis address served by a redis-server that persists every write to its AOF."""
    # The polls below send hundreds of requests a second; they test invalidation, not limits.
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = settings.RESILIENCE_RATE_LIMIT_BURST = 1_000_000
    redis_server.stop()
    server = RedisProcess(
        port=redis_server.port,
        directory=tmp_path / "redis",
        extra_args=["--appendonly", "yes", "--appendfsync", "always"],
    ).start()
    # Fast half-open, so a stale answer would show within the poll below, not after 5 s.
    redis_breaker.configure(reset_timeout=0.1)
    yield server
    server.kill()


@pytest.fixture
def acme():
    owner = make_user("acme-owner")
    tenant = make_tenant("acme", owner=owner)
    _, secret = make_key(tenant)
    return tenant, secret, owner


def bootstrap(client, secret):
    return client.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {secret}")


def poll(client, secret, *, seconds=POLL_SECONDS) -> list:
    """Return every answer of a tight loop of requests, starting at once."""
    answers, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append(bootstrap(client, secret))
    return answers


def warm(client, secret):
    assert bootstrap(client, secret).status_code == 200
    assert bootstrap(client, secret).status_code == 200


def during_outage(write, aof_redis, kind):
    """Run `write` while Redis is unreachable (killed, or paused), then bring Redis back as it was."""
    if kind == "sigkill":
        aof_redis.kill()
        write()
        aof_redis.start()  # from its AOF: the old version stamps and entries come back
    else:
        aof_redis.process.send_signal(signal.SIGSTOP)
        try:
            write()
        finally:
            aof_redis.process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("kind", ["sigkill", "sigstop"])
def test_a_key_revoked_during_an_outage_stays_revoked(
    client, acme, aof_redis, kind, django_capture_on_commit_callbacks
):
    _, secret, _ = acme
    warm(client, secret)

    def revoke():
        with django_capture_on_commit_callbacks(execute=True):
            apikey_revoke(api_key=ApiKey.objects.get(), actor=None)
        assert bootstrap(client, secret).status_code == 401  # from the database meanwhile

    during_outage(revoke, aof_redis, kind)
    statuses = [r.status_code for r in poll(client, secret)]
    assert set(statuses) == {401}, statuses


@pytest.mark.parametrize("kind", ["sigkill", "sigstop"])
def test_a_tenant_suspended_during_an_outage_stays_suspended(
    client, acme, aof_redis, kind, django_capture_on_commit_callbacks
):
    tenant, secret, _ = acme
    warm(client, secret)

    def suspend():
        with django_capture_on_commit_callbacks(execute=True):
            tenant_suspend(tenant=tenant, reason="unpaid", actor=None)

    during_outage(suspend, aof_redis, kind)
    answers = poll(client, secret)
    assert {r.status_code for r in answers} == {403}
    assert {r.json()["error"] for r in answers} == {"tenant_suspended"}


@pytest.mark.parametrize("kind", ["sigkill", "sigstop"])
def test_flag_changes_during_an_outage_are_served_after(
    client, acme, aof_redis, kind, django_capture_on_commit_callbacks
):
    tenant, secret, owner = acme
    beta = make_flag("beta")
    toggled = make_flag("self-serve", tenant_editable=True)
    warm(client, secret)

    def change():
        with django_capture_on_commit_callbacks(execute=True):
            flag_set_override(tenant=tenant, flag=beta, enabled=True, actor=None)
        with django_capture_on_commit_callbacks(execute=True):
            flag_owner_toggle(tenant=tenant, flag=toggled, enabled=True, actor=owner)

    during_outage(change, aof_redis, kind)
    answers = poll(client, secret)
    assert {r.status_code for r in answers} == {200}
    flags = [(r.json()["flags"]["beta"]["enabled"], r.json()["flags"]["self-serve"]["enabled"]) for r in answers]
    assert set(flags) == {(True, True)}, flags


def test_redis_restarted_from_an_old_aof_without_any_error_seen(
    client, acme, aof_redis, tmp_path, django_capture_on_commit_callbacks
):
    _, secret, _ = acme
    warm(client, secret)
    aof_redis.stop()
    shutil.copytree(aof_redis.directory, tmp_path / "old")  # a backup from before the revocation
    aof_redis.start()
    warm(client, secret)
    failures = redis_breaker.failures_total
    with django_capture_on_commit_callbacks(execute=True):
        apikey_revoke(api_key=ApiKey.objects.get(), actor=None)  # delivered: Redis is up
    assert bootstrap(client, secret).status_code == 401
    assert OutboxMessage.objects.filter(delivered_at__isnull=True).count() == 0
    aof_redis.stop()
    shutil.rmtree(aof_redis.directory)
    shutil.copytree(tmp_path / "old", aof_redis.directory)
    aof_redis.start()  # the version stamps and entries of before the revocation are back

    statuses = [r.status_code for r in poll(client, secret)]
    assert set(statuses) == {401}, statuses
    assert redis_breaker.failures_total == failures  # the process never saw Redis fail


def test_maintenance_delivers_the_backlog(acme, aof_redis, redis_client, django_capture_on_commit_callbacks):
    tenant, _, _ = acme
    aof_redis.kill()
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    pending = OutboxMessage.objects.filter(delivered_at__isnull=True)
    assert pending.count() == 1 and pending.get().attempts == 1
    aof_redis.start()
    redis_breaker.reset()

    out = StringIO()
    call_command("run_maintenance", "--once", "--json", stdout=out)
    report = [json.loads(line) for line in out.getvalue().splitlines() if '"outbox' in line]
    assert report and report[0]["outbox_delivered"] == 1 and report[0]["outbox_pending"] == 0
    tenant.refresh_from_db()
    assert redis_client.get(version_key(tenant.slug, tenant.pk)) == str(tenant.cache_version)
    assert OutboxMessage.objects.filter(delivered_at__isnull=True).count() == 0


def test_deliver_outbox_reports_the_backlog_and_fails_while_redis_is_down(
    acme, redis_server, django_capture_on_commit_callbacks
):
    tenant, _, _ = acme
    redis_server.kill()
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=tenant, reason="unpaid", actor=None)
    out = StringIO()
    with pytest.raises(Exception) as failed:
        call_command("deliver_outbox", "--json", stdout=out)
    assert "Redis" in str(failed.value)
    assert OutboxMessage.objects.get().attempts == 2


def test_a_new_default_rate_limit_applies_on_the_first_request(client, acme):
    tenant, secret, _ = acme
    assert tenant.plan.rate_limit_per_minute is None  # the plan inherits RATE_LIMIT_* defaults
    with override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=60, RESILIENCE_RATE_LIMIT_BURST=10):
        warm(client, secret)
        assert bootstrap(client, secret)["RateLimit-Limit"] == "60"
    # A restart with new defaults: same Redis, same cached entries, new settings.
    with override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=600, RESILIENCE_RATE_LIMIT_BURST=50):
        response = bootstrap(Client(), secret)
        assert response["RateLimit-Limit"] == "600"
        assert response.json()["limits"]["requests_per_minute"] == 600
        assert response.json()["limits"]["burst"] == 50


def test_a_plan_with_its_own_limits_keeps_them(client):
    tenant = make_tenant("globex", plan=make_plan("pro", rate_limit_per_minute=300, burst=5))
    _, secret = make_key(tenant)
    with override_settings(RESILIENCE_RATE_LIMIT_PER_MINUTE=600):
        assert bootstrap(client, secret)["RateLimit-Limit"] == "300"


def test_a_process_that_saw_nothing_of_a_partition_serves_no_stale_entry(
    client, acme, aof_redis, django_capture_on_commit_callbacks
):
    """Another replica, idle during the partition, answers from Redis at once: the writer redelivers first."""
    _, secret, _ = acme
    warm(client, secret)
    aof_redis.process.send_signal(signal.SIGSTOP)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            apikey_revoke(api_key=ApiKey.objects.get(), actor=None)
        time.sleep(1.5)  # the writer's background retries keep waiting on the hung server
        # From here on this process plays the other replica: it has seen no Redis error.
        cache_sync.behind, cache_sync.failures_seen = False, redis_breaker.failures_total
        redis_breaker.reset()
    finally:
        aof_redis.process.send_signal(signal.SIGCONT)
    statuses = [r.status_code for r in poll(client, secret)]
    assert set(statuses) == {401}, statuses
    assert not cache_sync.due()  # it served from Redis, not from the database


def _recorded_before_slugs(tenant, secret) -> OutboxMessage:
    """A revocation's outbox row as code from before hash tags recorded it: versions and hashes, no slugs."""
    from tenants.services.apikeys import apikey_hash

    Tenant.objects.filter(pk=tenant.pk).update(cache_version=tenant.cache_version + 1)
    payload = {"versions": {str(tenant.pk): tenant.cache_version + 1}, "apikeys": [apikey_hash(secret)]}
    return OutboxMessage.objects.create(topic="tenants.cache", payload=payload)


def test_pending_rows_from_before_hash_tags_gain_their_slugs(acme, redis_client):
    import importlib

    from django.apps import apps

    tenant, secret, _ = acme
    message = _recorded_before_slugs(tenant, secret)
    done = OutboxMessage.objects.create(topic="tenants.cache", payload={"versions": {}}, delivered_at=tenant.created_at)
    importlib.import_module("tenants.migrations.0008_outbox_payload_slugs").add_slugs(apps, None)
    message.refresh_from_db()
    assert message.payload["slugs"] == {str(tenant.pk): "acme"}
    assert OutboxMessage.objects.get(pk=done.pk).payload == {"versions": {}}, "delivered rows stay as they were"


@pytest.mark.parametrize("migrated", [True, False])
def test_rows_recorded_before_hash_tags_still_invalidate(acme, redis_client, migrated):
    import importlib

    from django.apps import apps

    from tenants.services.outbox import outbox_deliver_pending

    tenant, secret, _ = acme
    client = Client()
    assert bootstrap(client, secret).status_code == 200  # entry and document cached
    _recorded_before_slugs(tenant, secret)
    ApiKey.objects.update(revoked_at=tenant.created_at)  # what the old code's revocation wrote
    if migrated:
        importlib.import_module("tenants.migrations.0008_outbox_payload_slugs").add_slugs(apps, None)
    assert outbox_deliver_pending(topics=["tenants.cache"]).pending == 0
    assert redis_client.get(version_key("acme", tenant.pk)) == str(tenant.cache_version + 1)
    assert bootstrap(client, secret).status_code == 401
