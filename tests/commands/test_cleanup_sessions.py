"""cleanup_sessions: expired and orphaned index entries, expired database rows, batched and lockable."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management.base import CommandError
from django.utils import timezone

from agentapi_admin.command import EXIT_LOCKED, EXIT_REDIS_DOWN
from resilience.connection import key
from resilience.sessions.backends.redis import SessionStore
from resilience.sessions.keys import index_key
from tests.commands.conftest import db_state, redis_state, run_json
from tests.conftest import BASE_DIR, clean_env

pytestmark = pytest.mark.django_db


def live_session(user_id: int) -> str:
    store = SessionStore()
    store["_auth_user_id"] = str(user_id)
    store.save()
    return store.session_key


@pytest.fixture
def indexed(redis_client):
    """Two users: live sessions, an expired entry and an orphan (session data gone)."""
    user_model = get_user_model()
    alice = user_model.objects.create_user("alice")
    bob = user_model.objects.create_user("bob")
    live = [live_session(alice.pk), live_session(alice.pk), live_session(bob.pk)]
    past_ms = int(time.time() * 1000) - 60_000
    redis_client.zadd(index_key(alice.pk), {"expired-session-key": past_ms})
    orphan = live_session(bob.pk)
    redis_client.delete(SessionStore()._cache.make_key(SessionStore.cache_key_prefix + orphan))
    redis_client.zadd(index_key(999), {"expired-too": past_ms})  # an index with nothing live left
    return {"alice": alice, "bob": bob, "live": live, "orphan": orphan}


def members(redis_client, user_id) -> set[str]:
    return set(redis_client.zrange(index_key(user_id), 0, -1))


def test_removes_expired_and_orphaned_entries_keeps_live_ones(indexed, redis_client):
    summary = run_json("cleanup_sessions", "--batch-size", "1")
    assert summary["index_keys"] == 3
    assert (summary["expired_entries"], summary["orphaned_entries"]) == (2, 1)
    assert summary["batches"] == 3, "one index key per batch"
    live = indexed["live"]
    assert members(redis_client, indexed["alice"].pk) == set(live[:2])
    assert members(redis_client, indexed["bob"].pk) == {live[2]}
    assert not redis_client.exists(index_key(999)), "an index left empty disappears"
    assert not redis_client.exists(key("lock", "cleanup_sessions")), "the lock is released"
    again = run_json("cleanup_sessions")
    assert (again["expired_entries"], again["orphaned_entries"]) == (0, 0)


def test_dry_run_counts_and_changes_nothing(indexed, redis_client):
    before = (redis_state(redis_client), db_state())
    summary = run_json("cleanup_sessions", "--dry-run")
    assert summary["dry_run"] is True
    assert (summary["expired_entries"], summary["orphaned_entries"]) == (2, 1)
    assert (redis_state(redis_client), db_state()) == before


def test_lock_refuses_a_second_concurrent_run(indexed, redis_client):
    held = redis_client.lock(key("lock", "cleanup_sessions"), timeout=30)
    assert held.acquire(blocking=False)
    with pytest.raises(CommandError) as excinfo:
        run_json("cleanup_sessions")
    assert excinfo.value.returncode == EXIT_LOCKED
    assert len(members(redis_client, indexed["alice"].pk)) == 3, "the refused run changed nothing"
    held.release()


def test_redis_down_exits_2(redis_server):
    redis_server.kill()
    with pytest.raises(CommandError, match="Redis is unreachable") as excinfo:
        run_json("cleanup_sessions")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN


@pytest.mark.parametrize("engine", ["resilience.sessions.backends.db", "resilience.sessions.backends.cached_db"])
def test_database_engines_delete_expired_rows_in_batches(settings, engine):
    settings.SESSION_ENGINE = engine
    now = timezone.now()
    Session.objects.bulk_create(
        [Session(session_key=f"old{i:037d}", session_data="x", expire_date=now - timedelta(hours=1)) for i in range(5)]
        + [
            Session(session_key=f"new{i:037d}", session_data="x", expire_date=now + timedelta(hours=1))
            for i in range(2)
        ]
    )
    dry = run_json("cleanup_sessions", "--dry-run")
    assert dry["expired_rows"] == 5 and Session.objects.count() == 7
    summary = run_json("cleanup_sessions", "--batch-size", "2")
    assert summary["expired_rows"] == 5
    assert summary["batches"] == 3
    assert sorted(Session.objects.values_list("session_key", flat=True)) == [f"new{i:037d}" for i in range(2)]


def test_batch_size_is_validated():
    with pytest.raises(CommandError, match="--batch-size must be a whole number from 1 to 100000"):
        run_json("cleanup_sessions", "--batch-size", "0")


def test_pause_between_batches(indexed):
    summary = run_json("cleanup_sessions", "--batch-size", "1", "--pause-ms", "100")
    assert summary["batches"] == 3 and summary["seconds"] >= 0.3
    with pytest.raises(CommandError, match="--pause-ms must be from 0 to 10000"):
        run_json("cleanup_sessions", "--pause-ms", "-1")


def test_without_redis_only_database_rows_are_cleaned(settings):
    settings.RESILIENCE_REDIS_ENABLED = False
    settings.SESSION_ENGINE = "resilience.sessions.backends.db"
    Session.objects.create(session_key="o" * 40, session_data="x", expire_date=timezone.now() - timedelta(seconds=1))
    summary = run_json("cleanup_sessions")
    assert (summary["expired_rows"], summary["index_keys"]) == (1, 0)
    assert not Session.objects.exists()


def test_a_second_process_is_refused_while_the_first_runs(indexed, redis_client, redis_server, tmp_path):
    env = clean_env(DEBUG="true", REDIS_URL=redis_server.url, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    # The default engine keeps staff sessions in the database: its cleanup reads that table too.
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "sessions", "-v", "0"],
        env=env,
        cwd=BASE_DIR,
        check=True,
        capture_output=True,
    )
    first = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "cleanup_sessions", "--batch-size", "1", "--pause-ms", "1500"],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not redis_client.exists(key("lock", "cleanup_sessions")) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(CommandError, match="Another cleanup_sessions is running") as excinfo:
            run_json("cleanup_sessions")
        assert excinfo.value.returncode == EXIT_LOCKED
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err.decode()
    assert out.decode().startswith("cleanup_sessions: index_keys=3, expired_entries=2, orphaned_entries=1")
