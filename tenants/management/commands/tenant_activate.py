"""Activate a trial tenant: the one way from trial to active."""

from __future__ import annotations

from tenants.management.base import TenantStatusCommand
from tenants.models import Tenant
from tenants.services.tenants import tenant_activate


class Command(TenantStatusCommand):
    help = (
        "Turn the trial --tenant SLUG into an active one, audited; an active tenant is left as it is, "
        "a suspended or offboarded one is refused."
    )

    def already_done(self, tenant) -> bool:
        return tenant.status == Tenant.Status.ACTIVE

    def change(self, tenant, options: dict):
        return tenant_activate(tenant=tenant, actor=self.actor)
