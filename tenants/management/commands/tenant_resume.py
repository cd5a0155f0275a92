"""Resume a suspended tenant: its API keys serve again from the next request."""

from __future__ import annotations

from tenants.management.base import TenantWriteCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_resume


class Command(TenantWriteCommand):
    help = "Resume the suspended --tenant SLUG, audited; a tenant that is not suspended is left as it is."
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        if tenant.status != Tenant.Status.SUSPENDED:
            return {"tenant": tenant.slug, "status": tenant.status, "changed": 0}
        with self.writing():
            tenant = tenant_resume(tenant=tenant, actor=self.actor)
        return {"tenant": tenant.slug, "status": tenant.status, "changed": 1}
