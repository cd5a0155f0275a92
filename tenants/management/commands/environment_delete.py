"""Delete one of a tenant's environments with its overrides and owner toggles, audited as the operator."""

from __future__ import annotations

from agentapi_admin.command import UsageError
from tenants.management.base import TenantWriteCommand
from tenants.models import PRODUCTION
from tenants.services.environments import environment_delete


class Command(TenantWriteCommand):
    help = (
        "Delete the environment --key KEY of --tenant SLUG, with its overrides and owner toggles. Refused while "
        "live API keys read it (revoke them with apikey_revoke first) and for production, which every tenant has."
    )
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        parser.add_argument("--key", required=True, help="The environment's key, e.g. staging.")

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        key = options["key"]
        if key == PRODUCTION:
            raise UsageError("--key production: production cannot be deleted; every tenant has it.")
        self.resolve_environment(tenant, key, option="--key")
        with self.writing():
            environment_delete(tenant=tenant, key=key, actor=self.actor)
        return {"tenant": tenant.slug, "environment": key, "changed": 1}
