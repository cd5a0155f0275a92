"""Suspend a tenant: its API keys answer 403 from the next request."""

from __future__ import annotations

from tenants.management.base import TenantWriteCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_suspend


class Command(TenantWriteCommand):
    help = (
        "Suspend --tenant SLUG with a --reason kept in the audit log; its API keys answer 403 "
        "(tenant_suspended) from the next request. A suspended tenant is left as it is."
    )
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        parser.add_argument("--reason", required=True, help="Why; shown in the audit log and the admin.")

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        changed = 0
        if tenant.status != Tenant.Status.SUSPENDED:
            with self.writing():
                tenant = tenant_suspend(tenant=tenant, reason=options["reason"], actor=self.actor)
            changed = 1
        return {"tenant": tenant.slug, "status": Tenant.Status.SUSPENDED.value, "changed": changed}
