"""Activate a trial tenant: the one way from trial to active."""

from __future__ import annotations

from tenants.management.base import TenantWriteCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_activate


class Command(TenantWriteCommand):
    help = (
        "Turn the trial --tenant SLUG into an active one, audited; an active tenant is left as it is, "
        "a suspended or offboarded one is refused."
    )
    permission = "tenants.change_tenant"

    def add_command_arguments(self, parser) -> None:
        self.add_tenant_argument(parser, allow_all=False, required=True)

    def run(self, **options) -> dict:
        tenant = self.resolve_tenant(options["tenant"])
        if tenant.status == Tenant.Status.ACTIVE:
            return {"tenant": tenant.slug, "status": tenant.status, "changed": 0}
        with self.writing():
            tenant = tenant_activate(tenant=tenant, actor=self.actor)
        return {"tenant": tenant.slug, "status": tenant.status, "changed": 1}
