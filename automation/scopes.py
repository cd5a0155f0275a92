"""What each staff-token scope lets a token do, and the Django permissions its owner must hold for it."""

from __future__ import annotations

# scope -> (what it allows, the permissions its endpoints require of the token's user)
SCOPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tenants:read": (
        "read tenants, their environments, plans, flags, segments, overrides, members, usage and API-key metadata",
        (
            "tenants.view_tenant",
            "tenants.view_plan",
            "tenants.view_flag",
            "tenants.view_segment",
            "tenants.view_apikey",
            "tenants.view_membership",
            "tenants.view_invitation",
        ),
    ),
    "members:write": (
        "add members to tenants, change their roles, remove them; invite people and revoke invitations",
        (
            "tenants.add_membership",
            "tenants.change_membership",
            "tenants.delete_membership",
            "tenants.add_invitation",
            "tenants.change_invitation",
        ),
    ),
    "tenants:write": (
        "create, update, activate, suspend, resume and offboard tenants; reset their owners' feature toggles; "
        "add, delete and promote their environments",
        ("tenants.add_tenant", "tenants.change_tenant"),
    ),
    "plans:write": ("create and update plans", ("tenants.add_plan", "tenants.change_plan")),
    "flags:write": (
        "create and update flags; create, update and delete segments; set and clear tenant overrides",
        (
            "tenants.add_flag",
            "tenants.change_flag",
            "tenants.add_segment",
            "tenants.change_segment",
            "tenants.delete_segment",
        ),
    ),
    "keys:write": ("issue and revoke tenant API keys", ("tenants.add_apikey", "tenants.change_apikey")),
    "webhooks:read": (
        "read webhook endpoints (never their secrets) and their deliveries",
        ("webhooks.view_webhookendpoint", "webhooks.view_webhookdelivery"),
    ),
    "webhooks:write": (
        "create, update, rotate the secret of and delete webhook endpoints; redeliver deliveries",
        (
            "webhooks.add_webhookendpoint",
            "webhooks.change_webhookendpoint",
            "webhooks.delete_webhookendpoint",
            "webhooks.redeliver",
        ),
    ),
    "audit:read": ("read the audit trail", ("audit.view_auditevent",)),
    "changes:read": ("read change requests (scheduled changes and approvals)", ("changes.view_changerequest",)),
    "changes:write": (
        "schedule changes to flags, overrides and owner toggles; cancel change requests",
        ("changes.add_changerequest", "changes.change_changerequest"),
    ),
    "changes:approve": (
        "approve or reject other users' change requests (never the token user's own)",
        ("changes.approve_changerequest",),
    ),
    # The ops pages are open to every active staff user; acting from them needs console.operate.
    "ops:read": ("read rate-limit counters and circuit breakers", ()),
    "ops:write": ("reset rate-limit counters, force or reset circuit breakers", ("console.operate",)),
}


def scopes_missing_permissions(user, scopes: list[str]) -> dict[str, list[str]]:
    """Return {scope: [permission, …]} for each of `scopes` whose permissions `user` does not hold."""
    missing = {}
    for scope in scopes:
        lacking = [perm for perm in SCOPES[scope][1] if not user.has_perm(perm)]
        if lacking:
            missing[scope] = lacking
    return missing
