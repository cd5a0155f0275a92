"""Reads the portal needs that are scoped to one tenant; anything not the tenant's raises Http404."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.ratelimit.selectors import IdentityState, identity_state, top_limited
from tenants.models import ApiKey, Flag, Invitation, Membership, Tenant
from tenants.selectors import tenants_for_user
from webhooks.models import WebhookEndpoint


def tenant_api_keys(tenant: Tenant) -> QuerySet[ApiKey]:
    """Return the tenant's API keys, newest first."""
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by").order_by("-created_at")


def tenant_api_key(tenant: Tenant, key_id: str) -> ApiKey:
    """Return the tenant's API key `key_id`, or raise Http404."""
    key = ApiKey.objects.filter(tenant=tenant, pk=int(key_id)).first()
    if key is None:
        raise Http404("No such API key.")
    return key


def tenant_webhook_endpoint(tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
    """Return the tenant's own webhook endpoint `endpoint_id`, or raise Http404."""
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, pk=int(endpoint_id)).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def tenant_members(tenant: Tenant) -> QuerySet[Membership]:
    """Return the tenant's memberships by username."""
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")


def tenant_membership(tenant: Tenant, membership_id: str) -> Membership:
    """Return the tenant's membership `membership_id`, or raise Http404."""
    membership = Membership.objects.filter(tenant=tenant, pk=int(membership_id)).select_related("user").first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def tenant_pending_invitations(tenant: Tenant) -> QuerySet[Invitation]:
    """Return the tenant's invitations still waiting for an answer, newest first (expired ones included)."""
    return Invitation.objects.filter(tenant=tenant, state=Invitation.State.PENDING).select_related("invited_by")


def tenant_invitation(tenant: Tenant, invitation_id: str) -> Invitation:
    """Return the tenant's invitation `invitation_id`, or raise Http404."""
    invitation = Invitation.objects.filter(tenant=tenant, pk=int(invitation_id)).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def tenant_flag(tenant: Tenant, flag_key: str) -> Flag:
    """Return the live flag `flag_key`, or raise Http404."""
    flag = Flag.objects.filter(key=flag_key, archived=False).first()
    if flag is None:
        raise Http404("No such feature.")
    return flag


FLAG_ACTIONS: dict[str, str] = {
    AuditAction.FLAG_OWNER_TOGGLE: "switched",
    AuditAction.FLAG_SET_OVERRIDE: "overrode (platform admin)",
    AuditAction.FLAG_CLEAR_OVERRIDE: "cleared the override of",
    AuditAction.FLAG_OWNER_RESET: "reset your team's choice for (platform admin)",
}


@dataclass(frozen=True)
class FlagChange:
    created_at: object
    actor_label: str
    flag_key: str
    verb: str
    before: bool | None
    after: bool | None


def flag_history(tenant: Tenant, limit: int = 20) -> list[FlagChange]:
    """Return the tenant's latest flag changes from the audit trail, newest first."""
    events = AuditEvent.objects.filter(tenant=tenant, action__in=FLAG_ACTIONS).order_by("-created_at", "-id")[:limit]
    return [
        FlagChange(
            created_at=event.created_at,
            actor_label=event.actor_label,
            flag_key=event.object_id,
            verb=FLAG_ACTIONS[event.action],
            before=(event.before or {}).get("enabled"),
            after=(event.after or {}).get("enabled"),
        )
        for event in events
    ]


def user_memberships(user) -> list[Membership]:
    """Return the user's memberships in live tenants, for the switcher."""
    return list(tenants_for_user(user))


def tenant_overview(tenant: Tenant) -> dict:
    """Return the counts the tenant home page shows."""
    now = timezone.now()
    keys = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    return {
        "active_keys": keys.count(),
        "members": Membership.objects.filter(tenant=tenant).count(),
        "recent_events": [
            ActivityItem(
                event.created_at, event.actor_label, ACTIVITY_TEXT.get(event.action, event.action), _subject(event)
            )
            for event in AuditEvent.objects.filter(tenant=tenant).order_by("-created_at", "-id")[:6]
        ],
    }


# Plain words for the audit actions a tenant's own people can see; unknown ones show their code.
ACTIVITY_TEXT: dict[str, str] = {
    AuditAction.TENANT_CREATE: "created the tenant",
    AuditAction.TENANT_UPDATE: "changed the tenant settings",
    AuditAction.TENANT_SUSPEND: "suspended the tenant",
    AuditAction.TENANT_RESUME: "resumed the tenant",
    AuditAction.TENANT_SET_UPSTREAM_CREDENTIALS: "replaced the upstream credentials",
    AuditAction.MEMBERSHIP_ADD: "added a member",
    AuditAction.MEMBERSHIP_CHANGE_ROLE: "changed a role",
    AuditAction.MEMBERSHIP_REMOVE: "removed a member",
    AuditAction.APIKEY_ISSUE: "created an API key",
    AuditAction.APIKEY_REVOKE: "revoked an API key",
    AuditAction.FLAG_OWNER_TOGGLE: "switched a feature",
    AuditAction.FLAG_SET_OVERRIDE: "overrode a feature",
    AuditAction.FLAG_CLEAR_OVERRIDE: "cleared a feature override",
    AuditAction.FLAG_OWNER_RESET: "reset a feature toggle",
}


@dataclass(frozen=True)
class ActivityItem:
    created_at: object
    actor_label: str
    text: str
    subject: str


def _subject(event: AuditEvent) -> str:
    snapshot = event.after or event.before or {}
    if event.action.startswith("flag."):
        return event.object_id
    if event.action.startswith("membership."):
        return str(snapshot.get("user", ""))
    if event.action.startswith("apikey."):
        return str(snapshot.get("name", ""))
    return ""


@dataclass(frozen=True)
class RateLimitStatus:
    """The tenant's limiter state right now, or `available=False` when Redis cannot be read."""

    available: bool
    tenant: IdentityState | None = None
    busiest: tuple[IdentityState, ...] = ()


def tenant_ratelimit_status(tenant: Tenant, *, n: int = 5) -> RateLimitStatus:
    """Return the tenant-wide window and its busiest identities (API keys, IPs) from the limiter."""
    try:
        whole = identity_state("tenant", tenant, tenant.slug)
        busiest = tuple(state for state in top_limited(tenant=tenant, n=n + 1) if state.scope != "tenant")[:n]
    except REDIS_UNAVAILABLE_ERRORS:
        return RateLimitStatus(available=False)
    return RateLimitStatus(available=True, tenant=whole, busiest=busiest)
