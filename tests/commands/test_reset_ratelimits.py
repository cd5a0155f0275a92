"""reset_ratelimits: one identity, a scope, a tenant or everything, audited, validated, SCAN-based."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_LOCKED, EXIT_REDIS_DOWN
from audit.models import AuditEvent
from resilience.connection import key
from resilience.ratelimit.keys import bucket_index_keys, call_keys, tenant_index_key
from resilience.ratelimit.limiter import RateLimiter, state_key
from tests.commands.conftest import db_state, redis_state, run_json
from tests.tenants.factories import make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited(redis_client):
    """State for two tenants and tenant-less identities, plus one state key the index does not list."""
    acme, globex = make_tenant("acme"), make_tenant("globex")
    limiter = RateLimiter()
    for scope, tenant, identity in [
        ("user", acme, "1"),
        ("ip", acme, "203.0.113.7"),
        ("user", globex, "2"),
        ("ip", None, "198.51.100.1"),
        ("ip", None, "2001:db8::1"),
    ]:
        assert limiter.hit(scope, tenant, identity, limit=10, burst=0).allowed
    redis_client.hset(state_key("user", "acme", "unindexed"), mapping={"t": 1})
    redis_client.set(key("cache", "unrelated"), "1")
    return acme, globex


def live(redis_client) -> set[str]:
    """Return `<scope>:<tenant>:<identity>` of every state key (the part after its hash tag)."""
    return {name.split("}:", 1)[1] for name in redis_client.scan_iter(match=key("rl") + ":*")}


def bucket_members(redis_client) -> list[str]:
    return [m for index in bucket_index_keys() for m in redis_client.zrange(index, 0, -1)]


def test_one_identity(limited, redis_client):
    summary = run_json("reset_ratelimits", "--scope", "ip", "--identity", "2001:db8::1", "--reason", "support ticket")
    assert summary["state_keys"] == 1
    assert "ip:-:2001:db8::1" not in live(redis_client)
    assert "ip:-:198.51.100.1" in live(redis_client)
    assert not redis_client.zscore(call_keys("ip", None, "2001:db8::1").index_key, "ip:-:2001:db8::1")
    event = AuditEvent.objects.get(action="ratelimit.reset_identity")
    assert event.reason == "support ticket"


def test_one_tenant_including_unindexed_state(limited, redis_client):
    summary = run_json("reset_ratelimits", "--tenant", "acme")
    assert summary["state_keys"] == 3
    assert live(redis_client) == {"user:globex:2", "ip:-:198.51.100.1", "ip:-:2001:db8::1"}
    assert redis_client.zcard(tenant_index_key("acme")) == 0
    assert redis_client.zcard(tenant_index_key("globex")) == 1
    event = AuditEvent.objects.get(action="ratelimit.reset_matching")
    assert event.tenant.slug == "acme" and event.after["complete"] is True


def test_one_scope_across_tenants(limited, redis_client):
    summary = run_json("reset_ratelimits", "--scope", "ip")
    assert summary["state_keys"] == 3
    assert live(redis_client) == {"user:acme:1", "user:globex:2", "user:acme:unindexed"}
    assert bucket_members(redis_client) == []
    assert redis_client.zrange(tenant_index_key("acme"), 0, -1) == ["user:acme:1"]
    assert redis_client.zrange(tenant_index_key("globex"), 0, -1) == ["user:globex:2"]


def test_scope_within_a_tenant(limited, redis_client):
    assert run_json("reset_ratelimits", "--tenant", "acme", "--scope", "user")["state_keys"] == 2
    assert live(redis_client) == {"ip:acme:203.0.113.7", "user:globex:2", "ip:-:198.51.100.1", "ip:-:2001:db8::1"}


def test_all(limited, redis_client):
    summary = run_json("reset_ratelimits", "--all")
    assert summary["state_keys"] == 6
    assert live(redis_client) == set()
    assert bucket_members(redis_client) == [] and redis_client.zcard(tenant_index_key("acme")) == 0
    assert redis_client.exists(key("cache", "unrelated"))


@pytest.mark.parametrize(
    "args",
    [["--all"], ["--tenant", "acme"], ["--scope", "ip"], ["--scope", "ip", "--identity", "198.51.100.1"]],
)
def test_dry_run_counts_and_changes_nothing(limited, redis_client, args):
    before = (redis_state(redis_client), db_state())
    assert run_json("reset_ratelimits", *args, "--dry-run")["state_keys"] > 0
    assert (redis_state(redis_client), db_state()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "usr"], r"Unknown --scope 'usr': use one of user, ip, tenant, form. Did you mean 'user'\?"),
        (["--identity", "1"], "--identity needs --scope"),
        ([], "Say what to reset"),
        (["--all", "--scope", "ip"], "--all resets everything"),
        (["--tenant", "acmee"], "Unknown tenant 'acmee'. Did you mean: acme"),
    ],
)
def test_bad_flags_are_explained(limited, args, message):
    with pytest.raises(CommandError, match=message):
        run_json("reset_ratelimits", *args)


def test_lock_and_redis_down(limited, redis_client, redis_server):
    held = redis_client.lock(key("lock", "reset_ratelimits"), timeout=30)
    assert held.acquire(blocking=False)
    with pytest.raises(CommandError) as excinfo:
        run_json("reset_ratelimits", "--all")
    assert excinfo.value.returncode == EXIT_LOCKED
    held.release()
    redis_server.kill()
    with pytest.raises(CommandError, match="Redis is unreachable") as excinfo:
        run_json("reset_ratelimits", "--all")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN


def test_without_redis_the_error_says_so(settings):
    settings.RESILIENCE_REDIS_ENABLED = False
    with pytest.raises(CommandError, match="reset_ratelimits needs Redis, and REDIS_ENABLE=false") as excinfo:
        run_json("reset_ratelimits", "--all")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
