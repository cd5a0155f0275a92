"""Re-encrypt every stored secret with the current TOKEN_ENCRYPTION_KEY, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from tenants import crypto
from tenants.exceptions import DecryptionError
from tenants.models import Tenant
from tenants.services.tenants import tenant_reencrypt_credentials


@dataclass
class RotationReport:
    """Counts of one rotation run; `undecryptable` names the tenants whose secret no key opens."""

    rotated: int = 0
    already_current: int = 0
    undecryptable: list[str] = field(default_factory=list)
    batches: int = 0


def secrets_rotate(*, actor, batch_size: int = 100, dry_run: bool = False, tick=None) -> RotationReport:
    """Re-seal tenants' upstream credentials with the current key; each batch commits on its own (resumable)."""
    tick = tick or (lambda: None)
    report = RotationReport()
    rows = Tenant.objects.exclude(upstream_credentials="").order_by("pk")
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page[:batch_size])
        if not batch:
            return report
        with transaction.atomic():
            for tenant in batch:
                try:
                    if dry_run:
                        crypto.decrypt(tenant.upstream_credentials)
                        changed = crypto.needs_rotation(tenant.upstream_credentials)
                    else:
                        # The service locks the row, rechecks and audits: a concurrent run cannot double-rotate.
                        changed = tenant_reencrypt_credentials(tenant=tenant, actor=actor)
                except DecryptionError as exc:
                    report.undecryptable.append(f"{tenant.slug} ({exc})")
                    continue
                if changed:
                    report.rotated += 1
                else:
                    report.already_current += 1
        last = batch[-1].pk
        report.batches += 1
        tick()
