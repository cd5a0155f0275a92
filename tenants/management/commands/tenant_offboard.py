"""Offboard a tenant for good: status deleted, API keys refused, upstream credentials erased."""

from __future__ import annotations

from tenants.management.base import TenantWriteCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_offboard


class Command(TenantWriteCommand):
    help = (
        "Offboard --tenant SLUG with a --reason kept in the audit log: final (it cannot be resumed), its API "
        "keys answer 403 (tenant_deleted), its upstream credentials are erased; rows and audit are kept. "
        "An offboarded tenant is left as it is."
    )
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)
        parser.add_argument("--reason", required=True, help="Why; shown in the audit log and the admin.")

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        changed = 0
        if tenant.status != Tenant.Status.DELETED:
            with self.writing():
                tenant = tenant_offboard(tenant=tenant, reason=options["reason"], actor=self.actor)
            changed = 1
        return {"tenant": tenant.slug, "status": Tenant.Status.DELETED.value, "changed": changed}
