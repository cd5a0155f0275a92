"""Hostile command arguments: a CommandError with a clear message, never a traceback, nothing half-written."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.portal.sweep import db_state, redis_state

from .strategies import text

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
numbers = st.one_of(text, st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "99999999999999999999", ""]))


def _run(*args) -> str | None:
    """Run a command; return the CommandError message, or None when it ran."""
    try:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        return message
    except SystemExit as exc:  # argparse errors become CommandError under call_command; never exit
        pytest.fail(f"{args} exited with {exc.code}")
    return None


@FUZZ
@given(slug=text)
def test_probe_upstreams_with_a_hostile_tenant_names_it(world, slug):
    before = db_state()
    message = _run("probe_upstreams", f"--tenant={slug}")
    if slug.strip() and slug not in ("acme", "globex"):  # an empty --tenant means "not given"
        assert message is not None
    assert db_state()["tenants.Tenant"] == before["tenants.Tenant"]


@FUZZ
@given(timeout=numbers)
def test_probe_upstreams_timeout(world, timeout):
    message = _run("probe_upstreams", "--all", f"--timeout={timeout}") if "\x00" not in timeout else "skip"
    try:
        value = float(timeout)
    except ValueError:
        assert message is not None
        return
    if not value > 0:
        assert message is not None


@FUZZ
@given(batch=numbers)
def test_flush_usage_batch_size(world, redis_client, batch):
    redis_client.hset(f"agentapi:usage:{world.a.pk}:20260101", "requests", 5)
    before_rows = db_state()["tenants.UsageDaily"]
    before_keys = redis_state()
    message = _run("flush_usage", f"--batch-size={batch}")
    if message is not None:
        assert "--batch-size" in message or "invalid" in message.lower()
        # Refused: nothing flushed, nothing deleted.
        assert db_state()["tenants.UsageDaily"] == before_rows
        assert redis_state() == before_keys
