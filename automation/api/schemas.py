"""Request and response shapes of the admin API, for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

SLUG = r"^[-a-zA-Z0-9_]+$"
FLAG_KEY = r"^[a-z0-9_.-]{1,64}$"


class Page(Schema):
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last.")


# ----------------------------------------------------------------------------- tenants
class TenantOut(Schema):
    id: str
    slug: str
    name: str
    status: Literal["trial", "active", "suspended", "deleted"]
    status_reason: str
    plan: str = Field(description="The plan's code.")
    settings: dict[str, Any]
    upstream_url: str
    has_upstream_credentials: bool
    created_at: datetime
    updated_at: datetime


class TenantPage(Page):
    items: list[TenantOut]


class TenantCreate(Schema):
    slug: str = Field(min_length=1, max_length=50, pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    plan: str = Field(min_length=1, max_length=40, description="A plan code.")
    settings: dict[str, Any] | None = None
    upstream_url: str = Field("", max_length=200)
    status: Literal["trial", "active"] = "trial"


class TenantUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    plan: str | None = Field(None, min_length=1, max_length=40)
    settings: dict[str, Any] | None = None
    upstream_url: str | None = Field(None, max_length=200)


class SuspendIn(Schema):
    reason: str = Field(min_length=1, max_length=500)


# ------------------------------------------------------------------------------- plans
class PlanOut(Schema):
    code: str
    name: str
    rate_limit_per_minute: int | None
    burst: int | None
    daily_quota: int | None
    default_flags: dict[str, bool]
    created_at: datetime
    updated_at: datetime


class PlanPage(Page):
    items: list[PlanOut]


class PlanCreate(Schema):
    code: str = Field(min_length=1, max_length=40, pattern=SLUG)
    name: str = Field(min_length=1, max_length=100)
    rate_limit_per_minute: int | None = Field(None, ge=1, le=2_147_483_647)
    burst: int | None = Field(None, ge=0, le=2_147_483_647)
    daily_quota: int | None = Field(None, ge=0, le=2_147_483_647)
    default_flags: dict[str, bool] = Field(default_factory=dict)


class PlanUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    rate_limit_per_minute: int | None = Field(None, ge=1, le=2_147_483_647)
    burst: int | None = Field(None, ge=0, le=2_147_483_647)
    daily_quota: int | None = Field(None, ge=0, le=2_147_483_647)
    default_flags: dict[str, bool] | None = None


# ------------------------------------------------------------------------------- flags
class FlagOut(Schema):
    key: str
    description: str
    default: bool
    tenant_editable: bool
    risky: bool
    archived: bool
    created_at: datetime
    updated_at: datetime


class FlagPage(Page):
    items: list[FlagOut]


class FlagCreate(Schema):
    key: str = Field(pattern=FLAG_KEY)
    description: str = Field("", max_length=2000)
    default: bool = False
    tenant_editable: bool = False
    risky: bool = False


class FlagUpdate(Schema):
    description: str | None = Field(None, max_length=2000)
    default: bool | None = None
    tenant_editable: bool | None = None
    risky: bool | None = None
    archived: bool | None = None


class OverrideOut(Schema):
    tenant: str
    flag: str
    enabled: bool
    rollout_percent: int
    source: Literal["admin", "owner"]
    updated_at: datetime


class OverrideList(Schema):
    items: list[OverrideOut]


class OverrideIn(Schema):
    enabled: bool
    rollout_percent: int = Field(100, ge=0, le=100)


# ------------------------------------------------------------------------------ API keys
class ApiKeyOut(Schema):
    prefix: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str | None = Field(
        description="The full key, shown in this answer only (null when an Idempotency-Key replays it)."
    )


class ApiKeyPage(Page):
    items: list[ApiKeyOut]


class ApiKeyIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(None, description="Default: every tenant-key scope.")
    expires_at: datetime | None = None


# --------------------------------------------------------------------------------- audit
class AuditEventOut(Schema):
    id: int
    created_at: datetime
    actor: str
    action: str
    tenant: str | None
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None
    reason: str
    ip: str | None


class AuditPage(Page):
    items: list[AuditEventOut]


# ---------------------------------------------------------------------------- webhooks
class WebhookEndpointOut(Schema):
    id: int
    tenant: str | None = Field(description="The tenant's slug; null for a platform-wide endpoint.")
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str | None = Field(
        description="The signing secret (`whsec_...`), in this answer only; null in an Idempotency-Key replay."
    )


class WebhookSecretRotated(WebhookEndpointOut):
    secret: str = Field(description="The new signing secret, in this answer only; the previous ones overlap.")
    previous_secrets_expire_at: datetime


class WebhookEndpointPage(Page):
    items: list[WebhookEndpointOut]


class WebhookEndpointCreate(Schema):
    tenant: str | None = Field(
        None, min_length=1, max_length=50, pattern=SLUG, description="A tenant's slug; omit for platform-wide."
    )
    url: str = Field(min_length=1, max_length=2000, description="http(s); a tenant's must be a public address.")
    event_types: list[str] = Field(min_length=1, max_length=20)
    description: str = Field("", max_length=200)
    enabled: bool = True


class WebhookEndpointUpdate(Schema):
    url: str | None = Field(None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(None, min_length=1, max_length=20)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class WebhookDeliveryOut(Schema):
    id: int
    endpoint: int
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    manual: bool
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str
    delivered_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(Page):
    items: list[WebhookDeliveryOut]


# ------------------------------------------------------------------------ owner toggles
class OwnerToggleOut(Schema):
    tenant: str
    flag: str
    enabled: bool
    updated_by: str | None = Field(description="The username of who made the choice, if known.")
    updated_at: datetime


class OwnerTogglePage(Page):
    items: list[OwnerToggleOut]


class OffboardIn(Schema):
    reason: str = Field(min_length=1, max_length=500)


# ------------------------------------------------------------------------- change requests
CHANGE_STATES = Literal[
    "pending_approval", "approved", "scheduled", "applied", "reverted", "rejected", "cancelled", "failed"
]


class ChangeRequestOut(Schema):
    id: int
    url: str = Field(description="This request in the admin API.")
    operation: str = Field(description="flag.update, flag.set_override, flag.clear_override, flag.owner_reset, …")
    params: dict[str, Any] = Field(description="Natural keys and values: flag key, tenant slug, fields.")
    summary: str
    state: CHANGE_STATES
    flag: str
    tenant: str | None
    author: str | None
    reason: str
    requires_approval: bool
    apply_at: datetime | None = Field(description="Null: applies on approval, or at once.")
    revert_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    closed_by: str | None = Field(description="Who rejected or cancelled it.")
    closed_at: datetime | None
    applied_at: datetime | None
    reverted_at: datetime | None
    before: dict[str, Any] | None = Field(description="What the change found just before it applied.")
    inverse: dict[str, Any] | None = Field(description="The operation and params its revert applies.")
    last_error: str
    created_at: datetime
    updated_at: datetime


class ChangeRequestPage(Page):
    items: list[ChangeRequestOut]


class ChangeRequestCreate(Schema):
    operation: str = Field(min_length=1, max_length=64, description="flag.update, flag.set_override, …")
    params: dict[str, Any]
    apply_at: datetime | None = Field(None, description="Null: apply on approval, or at once without approval.")
    revert_at: datetime | None = Field(None, description="Put back what the change found, at this time.")
    reason: str = Field("", max_length=500)


class ChangeDecisionIn(Schema):
    reason: str = Field("", max_length=500)
