"""Probe every tenant's AgentAPI upstream (GET <upstream_url>/status) through its circuit breaker."""

from __future__ import annotations

from agentapi_admin.command import EXIT_FAILED, UsageError
from tenants.management.base import TenantCommand
from tenants.upstream import DEFAULT_TIMEOUT, upstream_check


class Command(TenantCommand):
    help = (
        "GET <upstream_url>/status of each serving tenant (or --tenant SLUG) through the tenant's breaker "
        "upstream.<slug>; failures count towards opening it. Exits 1 when any probe fails."
    )
    supports_dry_run = False

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser)
        parser.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"Seconds per probe (default {DEFAULT_TIMEOUT:g})."
        )

    def run(self, **options) -> dict:
        from tenants.models import Tenant

        if options["timeout"] <= 0:
            raise UsageError("--timeout must be a positive number of seconds, e.g. --timeout 5.")
        if options["tenant"]:
            tenants = [self.resolve_tenant(options["tenant"])]
        else:
            serving = (Tenant.Status.TRIAL, Tenant.Status.ACTIVE)
            tenants = list(Tenant.objects.filter(status__in=serving).exclude(upstream_url="").order_by("slug"))
        results = []
        for tenant in self.progress(tenants, total=len(tenants), description="probing upstreams"):
            result = upstream_check(tenant, timeout=options["timeout"])
            results.append(
                {
                    "tenant": tenant.slug,
                    "ok": result.ok,
                    "status_code": result.status_code,
                    "ms": result.latency_ms,
                    "breaker_state": result.breaker_state,
                    "error": result.error,
                }
            )
            if not self.as_json:
                verdict = "ok" if result.ok else f"FAIL ({result.error})"
                self.stdout.write(f"{tenant.slug}: {verdict}, {result.latency_ms} ms, breaker {result.breaker_state}")
        failed = [r["tenant"] for r in results if not r["ok"]]
        summary: dict[str, object] = {"probed": len(results), "ok": len(results) - len(failed), "failed": len(failed)}
        if self.as_json:
            summary["results"] = results
        if failed:
            summary["exit_code"] = EXIT_FAILED
            summary["error"] = f"Upstream probe failed for: {', '.join(failed)}"
        return summary
