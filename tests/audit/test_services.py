"""The audit trail is append-only and names its actor."""

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from audit.services import audit_record
from tenants.models import Plan, Tenant


@pytest.mark.django_db
def test_audit_record_snapshots_actor_and_object():
    user = get_user_model().objects.create_user("ops")
    tenant = Tenant.objects.create(slug="acme", name="Acme", plan=Plan.objects.create(code="std", name="Standard"))
    event = audit_record(
        actor=user,
        action="tenant.suspend",
        tenant=tenant,
        obj=tenant,
        before={"status": "active"},
        after={"status": "suspended"},
        reason="abuse",
    )
    assert event.actor_label == "ops"
    assert event.object_type == "tenants.tenant" and event.object_id == str(tenant.pk)
    assert audit_record(actor=None, action="system.tick").actor_label == "system"


@pytest.mark.django_db
def test_audit_rows_cannot_be_rewritten_or_deleted():
    event = audit_record(actor=None, action="x")
    event.action = "y"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get().action == "x"
