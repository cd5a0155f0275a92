"""One contract, run against every indexed session engine (as Django's SessionTestsMixin is)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from resilience.exceptions import SessionNotFound
from resilience.sessions import selectors
from resilience.sessions.backends.base import META_KEY
from resilience.sessions.services import session_revoke, sessions_revoke_all

PASSWORD = "a-long-test-password-1"
UA = "Mozilla/5.0 (X11; Linux x86_64) ContractTest/1.0"


class SessionEngineContract:
    """Behaviour every engine named by SESSION_STORAGE must have; subclasses set `engine`."""

    engine: str

    @pytest.fixture(autouse=True)
    def _engine(self, settings, db):
        settings.SESSION_ENGINE = self.engine
        self.store_class = selectors.session_engine()

    @pytest.fixture
    def user(self):
        return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)

    def login(self, client, ip="203.0.113.7", ua=UA):
        response = client.post(
            "/admin/login/?next=/admin/",
            {"username": "alice", "password": PASSWORD},
            REMOTE_ADDR=ip,
            HTTP_USER_AGENT=ua,
        )
        assert response.status_code == 302
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    # --- Django's own contract -------------------------------------------------
    def test_save_load_exists_delete(self):
        store = self.store_class()
        store["colour"] = "green"
        store.save()
        key = store.session_key
        assert self.store_class(key)["colour"] == "green"
        assert store.exists(key)
        store.delete()
        assert not store.exists(key)
        assert self.store_class(key).load() == {}

    def test_cycle_key_keeps_data(self):
        store = self.store_class()
        store["colour"] = "blue"
        store.save()
        old = store.session_key
        store.cycle_key()
        assert store.session_key != old
        assert not store.exists(old)
        store.save()  # Django promises the new key on save; an engine may place the session only then
        assert self.store_class(store.session_key)["colour"] == "blue"

    def test_anonymous_session_is_not_listed(self, user):
        store = self.store_class()
        store["x"] = 1
        store.save()
        assert selectors.sessions_for_user(user) == []
        assert selectors.session_users()[0] == []

    # --- the per-user index ----------------------------------------------------
    def test_login_is_listed_with_client_metadata(self, client, user):
        key = self.login(client)
        [info] = selectors.sessions_for_user(user)
        assert info.session_key == key
        assert (info.ip, info.user_agent, info.user_id) == ("203.0.113.7", UA, str(user.pk))
        assert info.created is not None and info.last_seen is not None
        assert info.expires.timestamp() == pytest.approx(time.time() + settings.SESSION_COOKIE_AGE, abs=5)
        assert "session_key" not in info.as_dict() and key not in str(info.as_dict())
        assert selectors.session_users()[0] == [(user, 1)]

    def test_each_login_is_a_separate_session(self, client, user, django_user_model):
        from django.test import Client

        self.login(client, ip="198.51.100.1")
        self.login(Client(), ip="198.51.100.2")
        assert sorted(info.ip for info in selectors.sessions_for_user(user)) == ["198.51.100.1", "198.51.100.2"]

    def test_logout_removes_the_session(self, client, user):
        self.login(client)
        client.post("/admin/logout/")
        assert selectors.sessions_for_user(user) == []

    def test_revoke_one_logs_the_browser_out_and_is_audited(self, client, user):
        key = self.login(client)
        assert client.get("/admin/").status_code == 200
        owner = session_revoke(session_key=key, actor=user, reason="lost laptop", ip="10.0.0.1")
        assert owner == str(user.pk)
        assert selectors.sessions_for_user(user) == []
        assert client.get("/admin/").status_code == 302
        event = AuditEvent.objects.get(action="session.revoke")
        assert (event.reason, event.before, event.actor_label) == ("lost laptop", {"user_id": str(user.pk)}, "alice")
        with pytest.raises(SessionNotFound):
            session_revoke(session_key=key, actor=user)

    def test_revoke_all_keeps_the_excepted_session(self, client, user):
        from django.test import Client

        keep = self.login(client)
        others = [Client() for _ in range(2)]
        for other in others:
            self.login(other)
        assert len(selectors.sessions_for_user(user)) == 3
        assert sessions_revoke_all(user=user, actor=user, except_key=keep, reason="rotate") == 2
        assert [info.session_key for info in selectors.sessions_for_user(user)] == [keep]
        assert client.get("/admin/").status_code == 200
        assert all(other.get("/admin/").status_code == 302 for other in others)
        event = AuditEvent.objects.get(action="session.revoke_all")
        assert len(event.before["sessions"]) == 2 and event.object_id == str(user.pk)

        assert sessions_revoke_all(user=user, actor=user) == 1
        assert client.get("/admin/").status_code == 302

    def test_expired_sessions_are_not_listed(self, client, user):
        key = self.login(client)
        store = self.store_class(key)
        store.set_expiry(1)
        store.save()
        time.sleep(1.2)
        assert selectors.sessions_for_user(user) == []
        self.store_class.clear_expired()
        assert selectors.session_users()[0] == []

    def test_django_s_clearsessions_runs_the_engine_s_maintenance(self, client, user):
        from django.core.management import call_command

        store = self.store_class(self.login(client))
        store.set_expiry(1)
        store.save()
        time.sleep(1.2)
        call_command("clearsessions")  # it calls SessionStore.clear_expired(), nothing else
        assert selectors.session_users()[0] == []

    def test_activity_is_written_at_most_once_per_interval(self, client, user, settings, monkeypatch):
        self.login(client)
        saves = []
        original = self.store_class.save
        monkeypatch.setattr(self.store_class, "save", lambda s, *a, **kw: saves.append(1) or original(s, *a, **kw))
        for _ in range(3):
            assert client.get("/admin/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=UA).status_code == 200
        assert saves == []

        seen = selectors.sessions_for_user(user)[0].last_seen
        settings.RESILIENCE_SESSION_ACTIVITY_INTERVAL = 0.01
        time.sleep(0.05)
        client.get("/admin/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=UA)
        assert saves == [1]
        assert selectors.sessions_for_user(user)[0].last_seen > seen

    def test_a_new_client_address_is_recorded_at_once(self, client, user):
        self.login(client)
        client.get("/admin/", REMOTE_ADDR="192.0.2.99", HTTP_USER_AGENT=UA)
        assert selectors.sessions_for_user(user)[0].ip == "192.0.2.99"

    def test_behind_a_trusted_proxy_the_client_s_address_is_recorded(self, client, user, settings):
        settings.RESILIENCE_RATE_LIMIT_TRUSTED_PROXIES = 1
        self.login(client)
        client.get("/admin/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="198.51.100.4", HTTP_USER_AGENT=UA)
        assert selectors.sessions_for_user(user)[0].ip == "198.51.100.4"  # what the audit trail records too

    def test_metadata_restarts_when_another_user_logs_in_on_the_session(self, client, user, django_user_model):
        bob = django_user_model.objects.create_user("bob", password=PASSWORD, is_staff=True)
        self.login(client)
        client.post("/admin/login/?next=/admin/", {"username": "bob", "password": PASSWORD})
        assert selectors.sessions_for_user(user) == []
        [info] = selectors.sessions_for_user(bob)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert self.store_class(key)[META_KEY]["uid"] == str(bob.pk)
        assert info.created is not None

    # --- lifetimes ---------------------------------------------------------------
    def test_absolute_lifetime_ends_a_session_that_activity_keeps_sliding(self, client, user, settings):
        settings.RESILIENCE_SESSION_MAX_AGE_ABSOLUTE = 2
        settings.RESILIENCE_SESSION_ACTIVITY_INTERVAL = 0.01
        self.login(client)
        signed_in = time.time()  # the session was created before this moment
        time.sleep(0.05)  # past the 10 ms activity interval, so this request refreshes the session and its cookie
        response = client.get("/admin/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=UA)
        assert response.status_code == 200
        # The cookie and the stored session never outlive the absolute deadline, however active.
        assert int(response.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) <= 2
        [info] = selectors.sessions_for_user(user)
        assert info.expires.timestamp() <= time.time() + 2.1
        # Used every ~0.3 s while clearly inside the lifetime (a busy machine makes fewer, never wrong, checks).
        used = 0
        while time.time() < signed_in + 1.4:
            assert client.get("/admin/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=UA).status_code == 200
            used += 1
            time.sleep(0.3)
        assert used >= 1
        time.sleep(max(0.0, signed_in + 2.0 - time.time()))
        # Ended although it was kept in use (the deadline is stored in whole seconds: allow one more).
        while client.get("/admin/").status_code == 200:
            assert time.time() < signed_in + 3.5, "the session outlived SESSION_MAX_AGE_ABSOLUTE"
            time.sleep(0.1)
        assert selectors.sessions_for_user(user) == []

    def test_signing_in_again_after_the_absolute_end_starts_a_new_lifetime(self, client, user, settings):
        settings.RESILIENCE_SESSION_MAX_AGE_ABSOLUTE = 1
        first = self.login(client)
        time.sleep(1.1)
        assert client.get("/admin/").status_code == 302
        second = self.login(client)
        assert second != first
        assert client.get("/admin/").status_code == 200

    # --- Django's async API keeps the index --------------------------------------
    def test_asave_and_acycle_key_keep_the_index(self, user):
        from asgiref.sync import async_to_sync
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        store = self.store_class()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        async_to_sync(store.asave)()
        assert [info.session_key for info in selectors.sessions_for_user(user)] == [store.session_key]
        old = store.session_key
        async_to_sync(store.acycle_key)()
        async_to_sync(store.asave)()
        assert [info.session_key for info in selectors.sessions_for_user(user)] == [store.session_key] != [old]
        assert sessions_revoke_all(user=user, actor=user) == 1
        assert not self.store_class().exists(store.session_key)

    def test_alogin_session_is_listed_and_revoked_everywhere(self, user):
        from asgiref.sync import async_to_sync
        from django.contrib.auth import alogin
        from django.contrib.auth.models import AnonymousUser
        from django.test import RequestFactory

        request = RequestFactory().post("/admin/login/")
        request.session = self.store_class()
        request.user = AnonymousUser()

        async def sign_in():
            await alogin(request, user, backend="django.contrib.auth.backends.ModelBackend")
            await request.session.asave()

        async_to_sync(sign_in)()
        key = request.session.session_key
        assert [info.session_key for info in selectors.sessions_for_user(user)] == [key]
        assert selectors.session_users()[0] == [(user, 1)]
        assert sessions_revoke_all(user=user, actor=user) == 1
        assert self.store_class(key).load() == {}


class TestRedisEngine(SessionEngineContract):
    engine = "resilience.sessions.backends.redis"

    def index(self, user):
        return f"{settings.RESILIENCE_KEY_PREFIX}:sessidx:{user.pk}"

    def test_index_is_a_sorted_set_that_expires_with_its_last_session(self, client, user, redis_client):
        key = self.login(client)
        assert redis_client.type(self.index(user)) == "zset"
        assert redis_client.zrange(self.index(user), 0, -1) == [key]
        assert 0 < redis_client.ttl(self.index(user)) <= settings.SESSION_COOKIE_AGE

    def test_orphaned_entries_are_dropped(self, client, user, redis_client):
        key = self.login(client)
        [data_key] = list(redis_client.scan_iter(match=f"*{key}"))
        assert data_key.startswith(f"{settings.RESILIENCE_KEY_PREFIX}:session:")
        redis_client.delete(data_key)
        assert selectors.sessions_for_user(user) == []
        assert redis_client.exists(self.index(user)) == 0

    def test_clear_expired_drops_orphans_and_expired_members(self, client, user, redis_client):
        key = self.login(client)
        redis_client.zadd(self.index(user), {"expiredkey": 1, "orphankey": time.time() * 1000 + 60_000})
        self.store_class.clear_expired()
        assert redis_client.zrange(self.index(user), 0, -1) == [key]

    def test_users_are_found_by_scan_among_many_other_keys(self, client, user, redis_client):
        self.login(client)
        with redis_client.pipeline(transaction=False) as pipe:
            for n in range(5000):
                pipe.set(f"{settings.RESILIENCE_KEY_PREFIX}:rl:user:-:{n}", 1)
            pipe.execute()
        users, cursor = selectors.session_users(count=10)
        assert users == [(user, 1)] and cursor == 0


class TestHybridEngine(SessionEngineContract):
    """The default engine; the contract's user is staff, so its sessions are database rows."""

    engine = "resilience.sessions.backend"


class TestDbEngine(SessionEngineContract):
    engine = "resilience.sessions.backends.db"


class TestCachedDbEngine(SessionEngineContract):
    engine = "resilience.sessions.backends.cached_db"


def test_a_plain_django_engine_is_refused_with_the_fix(settings, db):
    from django.core.exceptions import ImproperlyConfigured

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    with pytest.raises(ImproperlyConfigured, match=r"resilience\.sessions\.backend"):
        selectors.session_engine()
