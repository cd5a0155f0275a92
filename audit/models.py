"""The audit trail: an append-only row per write, naming the actor, the object, before and after.

Every app may write to it through `audit.services`; this app imports no other app of
the project (tenants and API keys are referenced by model label, not imported).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    """Every action the audit trail records, named `<entity>.<verb>`; call sites pass these, never strings."""

    APIKEY_ISSUE = "apikey.issue"
    APIKEY_REVOKE = "apikey.revoke"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    BREAKER_FORCE_CLOSE = "breaker.force_close"
    BREAKER_FORCE_OPEN = "breaker.force_open"
    BREAKER_RESET = "breaker.reset"
    CHANGE_REQUEST_APPLY = "change_request.apply"
    CHANGE_REQUEST_APPROVE = "change_request.approve"
    CHANGE_REQUEST_CANCEL = "change_request.cancel"
    CHANGE_REQUEST_CREATE = "change_request.create"
    CHANGE_REQUEST_FAIL = "change_request.fail"
    CHANGE_REQUEST_REJECT = "change_request.reject"
    CHANGE_REQUEST_REVERT = "change_request.revert"
    ENVIRONMENT_CREATE = "environment.create"
    ENVIRONMENT_DELETE = "environment.delete"
    ENVIRONMENT_PROMOTE = "environment.promote"
    FLAG_CLEAR_OVERRIDE = "flag.clear_override"
    FLAG_CREATE = "flag.create"
    FLAG_OWNER_RESET = "flag.owner_reset"
    FLAG_OWNER_TOGGLE = "flag.owner_toggle"
    FLAG_SET_OVERRIDE = "flag.set_override"
    FLAG_UPDATE = "flag.update"
    INVITATION_ACCEPT = "invitation.accept"
    INVITATION_CREATE = "invitation.create"
    INVITATION_DECLINE = "invitation.decline"
    INVITATION_REVOKE = "invitation.revoke"
    MEMBERSHIP_ADD = "membership.add"
    MEMBERSHIP_CHANGE_ROLE = "membership.change_role"
    MEMBERSHIP_REMOVE = "membership.remove"
    PLAN_CREATE = "plan.create"
    PLAN_UPDATE = "plan.update"
    RATELIMIT_RESET_IDENTITY = "ratelimit.reset_identity"
    RATELIMIT_RESET_MATCHING = "ratelimit.reset_matching"
    RATELIMIT_RESET_TENANT = "ratelimit.reset_tenant"
    SEGMENT_CREATE = "segment.create"
    SEGMENT_DELETE = "segment.delete"
    SEGMENT_UPDATE = "segment.update"
    SESSION_REVOKE = "session.revoke"
    SESSION_REVOKE_ALL = "session.revoke_all"
    TENANT_ACTIVATE = "tenant.activate"
    STAFF_TOKEN_CREATE = "staff_token.create"  # noqa: S105 - an action name, not a secret
    STAFF_TOKEN_REVOKE = "staff_token.revoke"  # noqa: S105 - an action name, not a secret
    TENANT_CACHE_PURGE = "tenant.cache_purge"
    TENANT_CREATE = "tenant.create"
    TENANT_DELETE = "tenant.delete"  # rows written before offboarding had its own name
    TENANT_OFFBOARD = "tenant.offboard"
    TENANT_REENCRYPT_CREDENTIALS = "tenant.reencrypt_credentials"
    TENANT_RESUME = "tenant.resume"
    TENANT_SET_UPSTREAM_CREDENTIALS = "tenant.set_upstream_credentials"
    TENANT_SUSPEND = "tenant.suspend"
    TENANT_UPDATE = "tenant.update"
    WEBHOOK_ENDPOINT_CREATE = "webhook.endpoint_create"
    WEBHOOK_ENDPOINT_DELETE = "webhook.endpoint_delete"
    WEBHOOK_ENDPOINT_UPDATE = "webhook.endpoint_update"
    WEBHOOK_REDELIVER = "webhook.redeliver"
    WEBHOOK_SECRET_ROTATE = "webhook.secret_rotate"  # noqa: S105 - an action name, not a secret


class AuditEvent(models.Model):
    """An append-only record of a write: who, when, what, before and after."""

    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Snapshot of the actor's name, kept when the user or key is gone.
    actor_label = models.CharField(max_length=150)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # The table predates this app (the model moved here from `tenants`); keeping its name kept its rows.
        db_table = "tenants_auditevent"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args, **kwargs):
        # Append-only is an invariant of the table, not business logic: refuse rewrites.
        if self.pk is not None:
            raise ValueError("AuditEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("AuditEvent rows are append-only")
