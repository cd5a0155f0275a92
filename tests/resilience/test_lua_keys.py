"""Every Lua script touches only the keys it was given: each call runs as a Redis ACL user allowed exactly those.

Redis Cluster routes a script by its KEYS and refuses keys of other slots; here a real
redis-server refuses (NOPERM) any key a script reaches that its caller did not declare.
The app's own flows drive every script and every branch of the gateway.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from resilience import lua
from resilience.breakers.events import record_transition
from resilience.ratelimit import RateLimiter
from resilience.sessions.backends.redis import SessionStore
from tenants.api import gateway
from tenants.cache import versions_publish
from tenants.keys import route_key
from tenants.models import ApiKey, Tenant
from tenants.services.apikeys import apikey_hash, apikey_revoke
from tenants.services.tenants import tenant_suspend
from tests.tenants.factories import make_flag, make_key, make_plan, make_tenant, make_user

pytestmark = pytest.mark.django_db

GATEWAY_OUTCOMES = {"miss", "stale", "ok", "limited", "quota", "not_serving", "scope", "expired"}


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", name)


class RestrictedScripts:
    """Run each script call as a fresh ACL user whose key patterns are exactly the call's KEYS."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.admin = redis.Redis(port=port)
        self.calls: list[tuple[str, list, object]] = []
        self.refused: list[str] = []
        self._run = lua.Script.run

    def run(self, script, client, keys, args=(), *, on_missing=None):
        user = f"lua-{uuid.uuid4().hex[:12]}"
        patterns = [_glob_escape(k.decode() if isinstance(k, bytes) else str(k)) for k in keys]
        self.admin.acl_setuser(
            user, enabled=True, passwords=["+pw"], categories=["+@all"], keys=patterns or None, reset_keys=True
        )
        try:
            with redis.Redis(port=self.port, username=user, password="pw") as restricted:
                reply = self._run(script, restricted, keys, args, on_missing=on_missing)
        except redis.exceptions.ResponseError as exc:
            # Inside a script Redis says so in words (outside one it would be NOPERM).
            if isinstance(exc, redis.exceptions.NoPermissionError) or "can't access" in str(exc):
                self.refused.append(f"{script.name} {list(keys)}: {exc}")
            raise
        finally:
            self.admin.acl_deluser(user)
        self.calls.append((script.name, list(keys), reply))
        return reply

    def run_many(self, client, calls):
        return [script.run(client, keys, args) for script, keys, args in calls]

    def outcomes(self, name: str) -> set[str]:
        return {
            (reply[0].decode() if isinstance(reply[0], bytes) else reply[0])
            for script, _keys, reply in self.calls
            if script == name and isinstance(reply, list) and reply
        }


@pytest.fixture
def restricted(redis_server, monkeypatch):
    spy = RestrictedScripts(redis_server.port)
    monkeypatch.setattr(lua.Script, "run", lambda script, *a, **kw: spy.run(script, *a, **kw))
    monkeypatch.setattr(lua, "run_many", spy.run_many)
    yield spy
    spy.admin.close()


def test_an_undeclared_key_is_refused(restricted, tmp_path, redis_client):
    built = tmp_path / "built.lua"
    built.write_text("return redis.call('GET', ARGV[1] .. ':elsewhere')")
    script = lua.Script("test.built", built)
    with pytest.raises(redis.exceptions.ResponseError, match="can't access"):
        script.run(redis_client, ["agentapi:declared"], ["agentapi:declared"])
    assert restricted.refused and "test.built" in restricted.refused[0]


def _bearer(client, secret, path="/api/v1/bootstrap", **extra):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}", **extra).status_code


def test_every_script_and_gateway_branch_stays_within_its_keys(
    restricted, redis_client, settings, django_capture_on_commit_callbacks
):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 1000
    settings.RESILIENCE_RATE_LIMIT_BURST = 1000
    http = Client()
    make_flag("beta")
    tight = make_tenant("acme", plan=make_plan("tight", rate_limit_per_minute=1, burst=1))
    _, secret = make_key(tight)
    assert [_bearer(http, secret) for _ in range(3)] == [200, 200, 429]  # miss + fill, ok, limited
    gateway.routes.forget()
    quota = make_tenant("globex", plan=make_plan("quota", rate_limit_per_minute=1000, daily_quota=1))
    api_key, quota_secret = make_key(quota)
    _, flags_only = make_key(quota, scopes=["flags:read"])
    assert _bearer(http, quota_secret, "/api/v1/flags/unknown") == 404  # counted as not_found, not usage
    assert _bearer(http, quota_secret) == 200
    assert _bearer(http, quota_secret) == 429  # quota
    assert _bearer(http, flags_only) == 403  # scope
    expiring, expiring_secret = make_key(quota, expires_at=timezone.now() + timedelta(hours=1))
    assert _bearer(http, expiring_secret, "/api/v1/flags/beta") in (200, 429)
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        tenant_suspend(tenant=Tenant.objects.get(pk=quota.pk), reason="unpaid", actor=None)  # publish
    assert _bearer(http, flags_only) == 403  # not serving
    with django_capture_on_commit_callbacks(execute=True):
        apikey_revoke(api_key=api_key, actor=None)
    assert _bearer(http, quota_secret) == 401
    assert redis_client.get(route_key(apikey_hash(quota_secret))) == "deny revoked"
    assert _bearer(http, "aak_00000000_" + "Z" * 43) == 401  # unknown: the address's budget is peeked, then spent
    redis_client.script_flush()
    assert _bearer(http, secret) in (200, 429)  # NOSCRIPT: every version republished, then EVAL
    # A fill that read the database before a commit is refused as stale.
    stale = gateway._fill(apikey_hash(secret))
    Tenant.objects.filter(pk=tight.pk).update(cache_version=tight.cache_version + 9)
    versions_publish({tight.pk: tight.cache_version + 9}, {tight.pk: tight.slug})
    keys, member = gateway.gateway_keys(stale.slug, stale.tenant_id, apikey_hash(secret), "20260101")
    gateway._run(redis_client, keys, ["", "body", "", 60, 1, 60000, "1", "config:read", "", member, "", *stale.args])
    # An expired key is refused in the script once its entry is cached.
    _, later = make_key(tight, expires_at=timezone.now() + timedelta(hours=1))
    late_hash = apikey_hash(later)
    fill = gateway._fill(late_hash)
    keys, member = gateway.gateway_keys(fill.slug, fill.tenant_id, late_hash, "20260101")
    tomorrow = int((timezone.now() + timedelta(days=1)).timestamp() * 1000)
    args = [tomorrow, "body", "", 60, 0, 60000, "1", "config:read", "", member, "", *fill.args]
    gateway._run(redis_client, keys, args)

    limiter = RateLimiter()
    checks = [("form", None, "login:203.0.113.9", 2, 1, 60, 1), ("user", tight, "alice", 2, 1, 60, 1)]
    limiter.hit_many(checks)
    limiter.refund_many(checks)
    limiter.peek("ip", None, "203.0.113.9", limit=2, burst=1)
    record_transition("upstream.acl", "closed", "open", token="t1", claim=("t2",))
    record_transition("upstream.acl", "closed", "open", token="t1")
    session = SessionStore()
    session[SESSION_KEY] = str(make_user("carol").pk)
    session.save()

    assert restricted.refused == []
    assert {name for name, _keys, _reply in restricted.calls} == set(lua.SCRIPTS) - {"test.built"}
    assert restricted.outcomes("tenants.gateway") >= GATEWAY_OUTCOMES, restricted.outcomes("tenants.gateway")
    for name, keys, _reply in restricted.calls:
        tags = {re.search(r"\{[^}]*\}", k).group(0) if "{" in k else k for k in map(str, keys)}
        assert len(tags) == 1, f"{name}: keys of one call must share a hash tag: {keys}"
