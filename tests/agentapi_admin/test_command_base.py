"""The shared conventions of operations commands: lock, dry run, JSON, tenant resolution, exit codes."""

import json
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_LOCKED, EXIT_REDIS_DOWN, EXIT_USAGE, OperationCommand
from resilience.connection import key
from tenants.models import Plan, Tenant
from tests.conftest import BASE_DIR, clean_env


class Sweep(OperationCommand):
    help = "Count things."
    lock_name = "sweep"

    def add_command_arguments(self, parser):
        self.add_tenant_argument(parser)

    def run(self, **options):
        tenant = self.resolve_tenant(options["tenant"]) if options["tenant"] else None
        seen = sum(1 for _ in self.progress(range(5), total=5))
        return {"seen": seen, "tenant": tenant.slug if tenant else None}


def run(*args):
    out = StringIO()
    call_command(Sweep(), *args, stdout=out)
    return out.getvalue().strip()


def test_plain_summary_is_one_line_and_marks_dry_runs():
    assert run().startswith("test_command_base: seen=5, tenant=None, seconds=")
    assert run("--dry-run").endswith("(dry run: nothing changed)")


def test_json_summary():
    summary = json.loads(run("--json", "--dry-run"))
    assert summary["command"] == "test_command_base"
    assert summary["dry_run"] is True and summary["seen"] == 5


def test_lock_refuses_a_second_concurrent_run(redis_client):
    held = redis_client.lock(key("lock", "sweep"), timeout=30)
    assert held.acquire(blocking=False)
    with pytest.raises(CommandError) as excinfo:
        run()
    assert excinfo.value.returncode == EXIT_LOCKED
    assert "Another test_command_base is running" in str(excinfo.value)
    held.release()
    assert run().startswith("test_command_base: seen=5")
    assert not redis_client.exists(key("lock", "sweep")), "the lock is released after the run"


def test_redis_down_is_exit_code_2(redis_server):
    redis_server.kill()
    with pytest.raises(CommandError) as excinfo:
        run()
    assert excinfo.value.returncode == EXIT_REDIS_DOWN
    assert "Redis is unreachable" in str(excinfo.value)


@pytest.mark.django_db
def test_unknown_tenant_names_close_matches():
    plan = Plan.objects.create(code="std", name="Standard")
    Tenant.objects.create(slug="acme", name="Acme", plan=plan)
    assert json.loads(run("--json", "--tenant", "acme"))["tenant"] == "acme"
    with pytest.raises(CommandError, match=r"Unknown tenant 'acmee'. Did you mean: acme\? Known tenants: acme."):
        run("--tenant", "acmee")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["acme\x00", "a" * 51, "acme; DROP TABLE", "ácme"])
def test_malformed_tenant_slug_is_refused_before_the_database(slug):
    plan = Plan.objects.create(code="std", name="Standard")
    Tenant.objects.create(slug="acme", name="Acme", plan=plan)
    with pytest.raises(CommandError, match=r"is not a tenant slug \(letters, digits, '-' and '_', at most 50"):
        run("--tenant", slug)


@pytest.mark.django_db
def test_unknown_tenant_is_a_usage_error_exit_64():
    with pytest.raises(CommandError) as excinfo:
        run("--tenant", "nobody")
    assert excinfo.value.returncode == EXIT_USAGE == 64


@pytest.mark.parametrize(
    "args",
    [
        ["redis_health", "--timeout", "soon"],
        ["redis_health", "--no-such-option"],
        ["cleanup_sessions", "--batch-size", "0"],
    ],
)
def test_usage_errors_exit_64_from_the_command_line_not_2(args, redis_server):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean_env(DEBUG="true", REDIS_URL=redis_server.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr
    assert args[1] in result.stderr, result.stderr


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


class Scan(OperationCommand):
    help = "Tick over batches of keys."

    def run(self, **options):
        with self.ticking("keys", total=40, unit="keys") as tick:
            for _ in range(4):
                tick(10)
        return {"keys": 40}


def test_progress_on_a_terminal_shows_count_rate_and_eta():
    out, err = StringIO(), Terminal()
    call_command(Scan(), stdout=out, stderr=err)
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue())
    assert "40/40 keys" in drawn, drawn
    assert re.search(r"[\d,]+ keys/s", drawn) and re.search(r"ETA \d+s", drawn), drawn
    assert out.getvalue().strip().startswith("test_command_base: keys=40"), "stdout holds only the summary"
