"""Two real `manage.py run_maintenance --once` processes race over the same due change requests.

Each request is claimed with SELECT ... FOR UPDATE SKIP LOCKED and leaves its due state in the
transaction that applies it, so every one applies (and reverts) exactly once, whoever wins.
Needs PostgreSQL (SQLite has no row locks): the processes use the test database, committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from changes.models import ChangeRequest
from changes.services import change_approve, change_request_create
from tenants.models import Flag
from tests.conftest import BASE_DIR, clean_env
from tests.tenants.factories import make_flag

from .conftest import guarded_flag

pytestmark = pytest.mark.django_db(transaction=True)

CHANGES = 30


def database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def schedule_due_changes(cast) -> list[ChangeRequest]:
    """CHANGES requests due now (scheduled an hour ago); every third one reverts now too."""
    past = timezone.now() - timedelta(hours=1)
    made = []
    for number in range(CHANGES):
        make_flag(f"race-{number:02d}")
        made.append(
            change_request_create(
                operation="flag.update",
                params={"flag": f"race-{number:02d}", "fields": {"default": True}},
                author=cast.author,
                apply_at=past + timedelta(minutes=1),
                revert_at=past + timedelta(minutes=2) if number % 3 == 0 else None,
                now=past,
            )
        )
    # One that needed approval, approved with a time that has come.
    guarded_flag("race-guarded")
    pending = change_request_create(
        operation="flag.update",
        params={"flag": "race-guarded", "fields": {"default": True}},
        author=cast.author,
        apply_at=past + timedelta(minutes=1),
        now=past,
    )
    made.append(change_approve(change=pending, actor=cast.approver, now=past))
    return made


def test_two_run_maintenance_processes_apply_each_due_change_exactly_once(cast, redis_server):
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL: run with DATABASE_URL=postgres://...")
    changes = schedule_due_changes(cast)
    assert all(c.state in (ChangeRequest.State.SCHEDULED, ChangeRequest.State.APPROVED) for c in changes)
    env = clean_env(DEBUG="true", REDIS_URL=redis_server.url, DATABASE_URL=database_url())
    command = [sys.executable, str(BASE_DIR / "manage.py"), "run_maintenance", "--once", "--json"]
    processes = [
        subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    summaries = [
        next(s for s in map(json.loads, out.decode().splitlines()) if s["command"] == "apply_changes")
        for out, _err in outputs
    ]
    reverts = len([n for n in range(CHANGES) if n % 3 == 0])
    assert sum(s["changes_applied"] for s in summaries) == CHANGES + 1, summaries
    assert sum(s["changes_reverted"] for s in summaries) == reverts, summaries
    assert sum(s["changes_failed"] for s in summaries) == 0, summaries
    ids = [str(c.pk) for c in changes]
    applies = list(
        AuditEvent.objects.filter(action=AuditAction.CHANGE_REQUEST_APPLY, object_id__in=ids).values_list(
            "object_id", flat=True
        )
    )
    assert sorted(applies) == sorted(ids), "every request applied once, none twice"
    flag_updates = AuditEvent.objects.filter(
        action=AuditAction.FLAG_UPDATE, reason__contains="[via change request #"
    ).exclude(reason__contains="revert of")
    assert flag_updates.count() == CHANGES + 1
    assert AuditEvent.objects.filter(action=AuditAction.CHANGE_REQUEST_REVERT).count() == reverts
    states = dict(ChangeRequest.objects.values_list("pk", "state"))
    for number, change in enumerate(changes[:CHANGES]):
        expected = ChangeRequest.State.REVERTED if number % 3 == 0 else ChangeRequest.State.APPLIED
        assert states[change.pk] == expected
        assert Flag.objects.get(key=f"race-{number:02d}").default is (number % 3 != 0)
    assert states[changes[-1].pk] == ChangeRequest.State.APPLIED
    guarded = AuditEvent.objects.filter(action=AuditAction.FLAG_UPDATE, reason__contains="approved by bob").get()
    assert guarded.actor_label == "alice"
