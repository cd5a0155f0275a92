"""The shared conventions of operations commands: lock, dry run, JSON, tenant resolution, exit codes."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi_admin.command import EXIT_LOCKED, EXIT_REDIS_DOWN
from resilience.connection import key
from tenants.management.base import TenantCommand
from tenants.models import Plan, Tenant


class Sweep(TenantCommand):
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
