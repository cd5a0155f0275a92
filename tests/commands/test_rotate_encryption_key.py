"""rotate_encryption_key: re-seals secrets with the current key, resumable, names what it cannot open."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_FAILED, EXIT_LOCKED, EXIT_REDIS_DOWN
from audit.models import AuditEvent
from resilience.connection import key
from tenants import crypto
from tenants.models import Tenant
from tenants.services import secrets
from tests.commands.conftest import db_state, redis_state, run_json
from tests.tenants.factories import make_plan, make_tenant

pytestmark = pytest.mark.django_db

KEY_OLD, KEY_NEW, KEY_LOST = (bytes.fromhex(h * 32) for h in ("11", "22", "33"))


@pytest.fixture
def sealed(settings):
    """Three tenants on the old key, one on the new, one on a key nobody has any more."""
    plan = make_plan("std")
    settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = []
    made = {}
    for slug, sealing_key in [("a", KEY_OLD), ("b", KEY_OLD), ("c", KEY_OLD), ("d", KEY_NEW), ("lost", KEY_LOST)]:
        settings.TENANTS_TOKEN_ENCRYPTION_KEY = sealing_key
        tenant = make_tenant(slug, plan=plan)
        Tenant.objects.filter(pk=tenant.pk).update(upstream_credentials=crypto.encrypt(f"secret-{slug}"))
        made[slug] = tenant
    make_tenant("nosecret", plan=plan)
    settings.TENANTS_TOKEN_ENCRYPTION_KEY = KEY_NEW
    settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = [KEY_OLD]
    return made


def tokens() -> dict[str, str]:
    return dict(Tenant.objects.exclude(upstream_credentials="").values_list("slug", "upstream_credentials"))


def test_rotates_old_tokens_and_names_the_undecryptable(sealed):
    before = tokens()
    with pytest.raises(CommandError) as excinfo:
        run_json("rotate_encryption_key", "--batch-size", "2")
    assert excinfo.value.returncode == EXIT_FAILED
    assert "1 secret(s) could not be decrypted: lost (" in str(excinfo.value)
    assert "TOKEN_ENCRYPTION_KEYS_OLD" in str(excinfo.value)
    after = tokens()
    for slug in "abc":
        assert after[slug] != before[slug] and not crypto.needs_rotation(after[slug])
        assert crypto.decrypt(after[slug]) == f"secret-{slug}"
    assert after["d"] == before["d"] and after["lost"] == before["lost"]
    assert AuditEvent.objects.filter(action="tenant.reencrypt_credentials").count() == 3


def test_summary_counts_and_rerun_skips_current_rows(sealed):
    Tenant.objects.filter(slug="lost").update(upstream_credentials="")
    summary = run_json("rotate_encryption_key")
    assert (summary["rotated"], summary["already_current"], summary["undecryptable"]) == (3, 1, 0)
    assert summary["key_id"] == crypto.key_id(KEY_NEW)
    again = run_json("rotate_encryption_key")
    assert (again["rotated"], again["already_current"]) == (0, 4)


def test_interrupted_run_resumes(sealed, monkeypatch):
    Tenant.objects.filter(slug="lost").update(upstream_credentials="")
    real = secrets.tenant_reencrypt_credentials
    calls = []

    def dies_on_the_third_row(**kwargs):
        calls.append(kwargs["tenant"].slug)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C in the middle of batch 2
        return real(**kwargs)

    monkeypatch.setattr(secrets, "tenant_reencrypt_credentials", dies_on_the_third_row)
    with pytest.raises(KeyboardInterrupt):
        run_json("rotate_encryption_key", "--batch-size", "2")
    monkeypatch.setattr(secrets, "tenant_reencrypt_credentials", real)
    done = [slug for slug, token in tokens().items() if not crypto.needs_rotation(token)]
    assert set(done) == {"d", *calls[:2]}, "batch 1 committed, batch 2 rolled back"
    rotated_before = len(set(calls[:2]) - {"d"})
    summary = run_json("rotate_encryption_key", "--batch-size", "2")
    assert (summary["rotated"], summary["already_current"]) == (3 - rotated_before, 1 + rotated_before)


def test_dry_run_counts_and_changes_nothing(sealed, redis_client):
    before = (redis_state(redis_client), db_state())
    with pytest.raises(CommandError, match="could not be decrypted: lost"):
        run_json("rotate_encryption_key", "--dry-run")
    assert (redis_state(redis_client), db_state()) == before
    Tenant.objects.filter(slug="lost").update(upstream_credentials="")
    summary = run_json("rotate_encryption_key", "--dry-run")
    assert (summary["rotated"], summary["already_current"], summary["undecryptable"]) == (3, 1, 0)


def test_lock_refuses_a_second_run_and_batch_size_is_validated(sealed, redis_client):
    held = redis_client.lock(key("lock", "rotate_encryption_key"), timeout=30)
    assert held.acquire(blocking=False)
    with pytest.raises(CommandError) as excinfo:
        run_json("rotate_encryption_key")
    assert excinfo.value.returncode == EXIT_LOCKED
    held.release()
    with pytest.raises(CommandError, match="--batch-size must be a whole number from 1 to 10000"):
        run_json("rotate_encryption_key", "--batch-size", "0")


def test_redis_down_exits_2_before_touching_a_row(sealed, redis_server):
    before = tokens()
    redis_server.kill()
    with pytest.raises(CommandError, match="Redis is unreachable") as excinfo:
        run_json("rotate_encryption_key")
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
    assert tokens() == before
