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


# (command, fixed arguments, the option fuzzed, values it accepts) for every operations command.
COMMAND_OPTIONS = [
    ("redis_health", [], "--timeout", numbers),
    ("redis_health", [], "--max-latency-ms", numbers),
    ("cleanup_sessions", ["--dry-run"], "--batch-size", numbers),
    ("cleanup_sessions", ["--dry-run"], "--pause-ms", numbers),
    ("rotate_encryption_key", ["--dry-run"], "--batch-size", numbers),
    ("flush_flag_asks", ["--dry-run"], "--batch-size", numbers),
    ("flags_stale", [], "--days", numbers),
    ("run_maintenance", ["--once", "--dry-run"], "--interval", numbers),
    ("purge_tenant_cache", ["--dry-run"], "--tenant", text),
    ("reset_ratelimits", ["--dry-run"], "--tenant", text),
    ("reset_ratelimits", ["--dry-run"], "--scope", text),
    ("reset_ratelimits", ["--dry-run", "--scope", "ip"], "--identity", text),
]


def _accepts_dry_run(name: str) -> bool:
    from django.core.management import get_commands, load_command_class

    command = load_command_class(get_commands()[name], name)
    return "--dry-run" in command.create_parser("manage.py", name).format_help()


@settings(FUZZ, max_examples=96)  # twelve command options: about eight values each
@given(case=st.sampled_from(COMMAND_OPTIONS), data=st.data())
def test_every_command_option_refuses_hostile_values_cleanly(world, case, data):
    name, fixed, option, strategy = case
    value = data.draw(strategy, label=option)
    if "\x00" in value:
        value = value.replace("\x00", "")  # argv cannot carry NUL; call_command mirrors argv
    fixed = [arg for arg in fixed if arg != "--dry-run" or _accepts_dry_run(name)]
    before = db_state()
    keys_before = redis_state()
    try:
        call_command(name, *fixed, f"{option}={value}", stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        # Refused (or failed with a reason): nothing half-written.
        assert db_state() == before
        assert redis_state() == keys_before
    except SystemExit as exc:
        pytest.fail(f"{name} {option}={value!r} exited with {exc.code} instead of raising CommandError")
