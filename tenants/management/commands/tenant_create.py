"""Create a tenant on a plan, audited as the operator."""

from __future__ import annotations

import json

from agentapi_admin.command import UsageError
from tenants.management.base import TenantWriteCommand
from tenants.models import Plan, Tenant
from tenants.services.tenants import tenant_create


def _settings(raw: str | None) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError(
            '--tenant-settings is not a JSON object; pass e.g. --tenant-settings \'{"agent_type": "goose"}\'.'
        )
    return value


class Command(TenantWriteCommand):
    help = (
        "Create a tenant (trial unless --status active) on --plan CODE, with optional settings and upstream URL. "
        "It serves API keys issued with apikey_issue at once."
    )
    permission = "tenants.add_tenant"

    def add_command_arguments(self, parser) -> None:
        parser.add_argument("--slug", required=True, help="Permanent identifier: letters, digits, '-' and '_'.")
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument("--plan", required=True, metavar="CODE", help="The plan's code.")
        parser.add_argument("--status", choices=[Tenant.Status.TRIAL, Tenant.Status.ACTIVE], default="trial")
        parser.add_argument("--tenant-settings", metavar="JSON", help="Tenant settings as a JSON object (validated).")
        parser.add_argument("--upstream-url", default="", metavar="URL", help="The tenant's AgentAPI base URL.")

    def run(self, **options) -> dict:
        settings = _settings(options["tenant_settings"])
        plan = self.resolve(Plan, field="code", value=options["plan"], option="--plan")
        with self.writing():
            tenant = tenant_create(
                slug=options["slug"],
                name=options["name"],
                plan=plan,
                settings=settings,
                upstream_url=options["upstream_url"],
                status=options["status"],
                actor=self.actor,
            )
        return {"tenant": tenant.slug, "status": tenant.status, "plan": plan.code, "created": 1}
