"""Offboard a tenant for good: status deleted, API keys refused, upstream credentials erased."""

from __future__ import annotations

from tenants.management.base import TenantStatusCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_offboard


class Command(TenantStatusCommand):
    help = (
        "Offboard --tenant SLUG with a --reason kept in the audit log: final (it cannot be resumed), its API "
        "keys answer 403 (tenant_deleted), its upstream credentials are erased; rows and audit are kept. "
        "An offboarded tenant is left as it is."
    )
    takes_reason = True

    def already_done(self, tenant) -> bool:
        return tenant.status == Tenant.Status.DELETED

    def change(self, tenant, options: dict):
        return tenant_offboard(tenant=tenant, reason=options["reason"], actor=self.actor)
