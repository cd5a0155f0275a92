"""Suspend a tenant: its API keys answer 403 from the next request."""

from __future__ import annotations

from tenants.management.base import TenantStatusCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_suspend


class Command(TenantStatusCommand):
    help = (
        "Suspend --tenant SLUG with a --reason kept in the audit log; its API keys answer 403 "
        "(tenant_suspended) from the next request. A suspended tenant is left as it is."
    )
    takes_reason = True

    def already_done(self, tenant) -> bool:
        return tenant.status == Tenant.Status.SUSPENDED

    def change(self, tenant, options: dict):
        return tenant_suspend(tenant=tenant, reason=options["reason"], actor=self.actor)
