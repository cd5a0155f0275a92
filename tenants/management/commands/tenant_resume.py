"""Resume a suspended tenant: its API keys serve again from the next request."""

from __future__ import annotations

from tenants.management.base import TenantStatusCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_resume


class Command(TenantStatusCommand):
    help = "Resume the suspended --tenant SLUG, audited; a tenant that is not suspended is left as it is."

    def already_done(self, tenant) -> bool:
        return tenant.status != Tenant.Status.SUSPENDED

    def change(self, tenant, options: dict):
        return tenant_resume(tenant=tenant, actor=self.actor)
