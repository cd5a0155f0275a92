"""Listing who is limited (from the index) and audited resets."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from resilience.ratelimit import RateLimiter, state_key
from resilience.ratelimit.selectors import identity_state, limited_identities, top_limited
from resilience.ratelimit.services import ratelimit_reset_identity, ratelimit_reset_tenant
from tenants.models import Plan, Tenant


@pytest.fixture
def acme(db):
    return Tenant.objects.create(slug="acme", name="Acme", plan=Plan.objects.create(code="p", name="P"))


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", is_staff=True)


def _fill(limiter, scope, tenant, identity, times, limit=60, burst=2):
    return [limiter.hit(scope, tenant, identity, limit=limit, burst=burst) for _ in range(times)]


def test_limited_identities_lists_live_state_with_filters(acme):
    limiter = RateLimiter()
    _fill(limiter, "user", acme, "alice", 5)  # 3 admitted, 2 denied
    _fill(limiter, "user", acme, "bob", 1)
    _fill(limiter, "ip", acme, "10.0.0.1", 1)
    _fill(limiter, "ip", None, "10.0.0.2", 1)

    states, cursor = limited_identities(tenant=acme)
    assert cursor == 0
    by_identity = {s.identity: s for s in states}
    assert set(by_identity) == {"alice", "bob", "10.0.0.1"}
    alice = by_identity["alice"]
    assert alice.limited and alice.remaining == 0 and alice.denied == 2 and alice.used == 3
    assert alice.key == "agentapi:rl:user:acme:alice"
    assert 0 < alice.retry_after <= 1 and 2 < alice.reset_after <= 3
    assert not by_identity["bob"].limited and by_identity["bob"].remaining == 2

    users, _ = limited_identities(tenant=acme, scope="user")
    assert {s.identity for s in users} == {"alice", "bob"}
    found, _ = limited_identities(text="10.0.0")
    assert {(s.tenant, s.identity) for s in found} == {("acme", "10.0.0.1"), ("-", "10.0.0.2")}
    assert limited_identities(text="*")[0] == []  # glob characters are literal


def test_limited_identities_pages_with_the_zscan_cursor(acme):
    limiter = RateLimiter()
    for n in range(300):  # big enough that Redis stops using a listpack and pages for real
        limiter.hit("ip", acme, f"10.0.{n // 256}.{n % 256}", limit=60, burst=0)
    seen, cursor, pages = set(), 0, 0
    while True:
        states, cursor = limited_identities(tenant=acme, cursor=cursor, count=50)
        seen.update(s.identity for s in states)
        pages += 1
        if cursor == 0:
            break
    assert len(seen) == 300 and pages > 1


def test_top_limited_puts_most_denied_first(acme):
    limiter = RateLimiter()
    _fill(limiter, "user", acme, "quiet", 1)
    _fill(limiter, "user", acme, "noisy", 8)
    _fill(limiter, "user", acme, "busy", 4)
    assert [s.identity for s in top_limited(tenant=acme, n=2)] == ["noisy", "busy"]


def test_reset_identity_restores_the_allowance_and_audits(acme, staff, redis_client):
    limiter = RateLimiter()
    _fill(limiter, "user", acme, "alice", 4)
    assert not limiter.hit("user", acme, "alice", limit=60, burst=2).allowed
    assert ratelimit_reset_identity(scope="user", tenant=acme, identity="alice", actor=staff, reason="support ticket")
    assert redis_client.exists(state_key("user", acme, "alice")) == 0
    assert identity_state("user", acme, "alice") is None
    assert limited_identities(tenant=acme)[0] == []
    assert limiter.hit("user", acme, "alice", limit=60, burst=2).allowed
    event = AuditEvent.objects.get(action="ratelimit.reset_identity")
    assert event.actor_label == "ops" and event.tenant == acme and event.reason == "support ticket"
    assert event.object_id == "agentapi:rl:user:acme:alice"


def test_reset_tenant_clears_every_identity_of_that_tenant_only(acme, staff, redis_client):
    limiter = RateLimiter()
    for identity in ("a", "b", "c"):
        _fill(limiter, "user", acme, identity, 3)
    _fill(limiter, "user", "globex", "z", 3)
    assert ratelimit_reset_tenant(tenant=acme, actor=staff, reason="incident") == 3
    assert limited_identities(tenant=acme)[0] == []
    assert [s.identity for s in limited_identities()[0]] == ["z"]
    event = AuditEvent.objects.get(action="ratelimit.reset_tenant")
    assert event.after == {"identities_reset": 3}


def test_reset_when_redis_is_down_raises_and_writes_no_audit(acme, staff, redis_server):
    redis_server.kill()
    with pytest.raises(Exception, match=r"(?i)connect|breaker"):
        ratelimit_reset_identity(scope="user", tenant=acme, identity="a", actor=staff, reason="x")
    assert not AuditEvent.objects.filter(action="ratelimit.reset_identity").exists()
