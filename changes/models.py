"""Change requests: a change to a flag, an override or an owner toggle, scheduled, approved or both.

Writes go through `changes.services`; the operations a request may carry are in `changes.operations`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

APPROVE_PERMISSION = "changes.approve_changerequest"


class ChangeRequest(models.Model):
    """One change (an operation and its natural-key params) with its schedule, approval and outcome."""

    class State(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved, waiting for its time"
        SCHEDULED = "scheduled", "Scheduled"
        APPLIED = "applied", "Applied"
        REVERTED = "reverted", "Reverted"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    # States a request may still be cancelled in, and those that apply once apply_at is due.
    OPEN_STATES = (State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED)
    DUE_STATES = (State.APPROVED, State.SCHEDULED)

    # A name of changes.operations.OPERATIONS (the audit action of the write it makes).
    operation = models.CharField(max_length=64, db_index=True)
    # Natural keys and values: {"flag": "beta", "tenant": "acme", "enabled": true, ...}.
    params = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    # Copied from params for filters and the portal's per-tenant list.
    flag_key = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="change_requests"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, db_index=True)
    requires_approval = models.BooleanField(default=False)
    # Null: apply on approval (or at once when no approval is needed).
    apply_at = models.DateTimeField(null=True, blank=True)
    # Null: never revert. The inverse is computed from the state just before applying.
    revert_at = models.DateTimeField(null=True, blank=True)
    inverse = models.JSONField(null=True, blank=True, editable=False)
    # What the change found just before applying, for the before/after view.
    before = models.JSONField(null=True, blank=True, editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Who rejected or cancelled it, and when.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_changerequest", "Can approve or reject change requests (never one's own)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(revert_at__isnull=True) | Q(apply_at__isnull=True) | Q(revert_at__gt=F("apply_at")),
                name="changerequest_revert_after_apply",
            ),
        ]
        indexes = [
            models.Index(
                fields=["apply_at", "id"],
                name="changerequest_due_idx",
                condition=Q(state__in=["approved", "scheduled"]),
            ),
            models.Index(
                fields=["revert_at", "id"],
                name="changerequest_revert_due_idx",
                condition=Q(state="applied", revert_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"
