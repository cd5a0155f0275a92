"""Reads the portal needs that are scoped to one tenant; anything not the tenant's raises Http404."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Value
from django.http import Http404
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.ratelimit.selectors import IdentityState, identity_state, top_limited
from tenants.models import (
    PRODUCTION,
    ApiKey,
    Environment,
    Flag,
    Invitation,
    Membership,
    OwnerToggle,
    Tenant,
    TenantFlag,
)
from tenants.selectors import tenant_environments, tenants_for_user
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


class UnknownEnvironment(Http404):
    """A `?env=` the tenant does not have; its message names the ones it has (they are the tenant's own)."""


def selected_environment(tenant: Tenant, key: str | None, known: list[str] | None = None) -> str:
    """Return the environment `key` names (production when empty), or raise UnknownEnvironment."""
    known = tenant_environments(tenant) if known is None else known
    if not key:
        return PRODUCTION
    if key not in known:
        shown = key if len(key) <= 40 else key[:40] + "…"
        raise UnknownEnvironment(f"{tenant.name} has no environment “{shown}” (it has: {', '.join(known)}).")
    return key


def tenant_environment(tenant: Tenant, key: str) -> Environment:
    """Return the tenant's environment row `key` (production is none), or raise Http404."""
    environment = Environment.objects.filter(tenant=tenant, key=key).first()
    if environment is None:
        raise Http404("No such environment.")
    return environment


@dataclass(frozen=True)
class EnvironmentRow:
    """One environment of a tenant with what lives in it."""

    key: str
    name: str
    created_at: object
    created_by: str
    overrides: int
    owner_toggles: int
    live_keys: int

    @property
    def is_production(self) -> bool:
        return self.key == PRODUCTION


def tenant_environment_rows(tenant: Tenant) -> list[EnvironmentRow]:
    """Return the tenant's environments, production first, with counts of overrides, owner toggles and live keys.

    Live keys are the ones not revoked (expired included): those are what stops a deletion.
    """
    rows = list(Environment.objects.filter(tenant=tenant).select_related("created_by").order_by("key"))

    def counted(queryset, layer: str):
        return (
            queryset.filter(tenant=tenant).order_by().values("environment").annotate(n=Count("id"), layer=Value(layer))
        )

    # One query for the three counts of every environment.
    found = counted(TenantFlag.objects, "overrides").union(
        counted(OwnerToggle.objects, "owner_toggles"),
        counted(ApiKey.objects.filter(revoked_at__isnull=True), "live_keys"),
        all=True,
    )
    counts: dict[tuple[str, str], int] = {(row["environment"], row["layer"]): row["n"] for row in found}

    def row(key: str, name: str, created_at, created_by) -> EnvironmentRow:
        return EnvironmentRow(
            key=key,
            name=name,
            created_at=created_at,
            created_by=created_by.get_username() if created_by else "",
            overrides=counts.get((key, "overrides"), 0),
            owner_toggles=counts.get((key, "owner_toggles"), 0),
            live_keys=counts.get((key, "live_keys"), 0),
        )

    production = row(PRODUCTION, "Production", tenant.created_at, None)
    return [production, *(row(env.key, env.name, env.created_at, env.created_by) for env in rows)]


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
    environment: str = PRODUCTION


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
            # The services name the environment in a snapshot only when it is not production.
            environment=(event.after or event.before or {}).get("environment", PRODUCTION),
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
    AuditAction.ENVIRONMENT_CREATE: "added an environment",
    AuditAction.ENVIRONMENT_DELETE: "deleted an environment",
    AuditAction.ENVIRONMENT_PROMOTE: "promoted to an environment",
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
    if event.action.startswith("environment."):
        return event.object_id
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
