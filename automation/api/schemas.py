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
    labels: list[str] = Field(description="Tags segments can target (tenant.labels).")
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
    labels: list[str] = Field(default_factory=list, max_length=20, description='Tags, e.g. ["eu", "beta"].')
    upstream_url: str = Field("", max_length=200)
    status: Literal["trial", "active"] = "trial"


class TenantUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    plan: str | None = Field(None, min_length=1, max_length=40)
    settings: dict[str, Any] | None = None
    labels: list[str] | None = Field(None, max_length=20, description="Replaces the labels; null: none.")
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
    max_environments: int = Field(description="How many environments a tenant may have, production included.")
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
    max_environments: int = Field(3, ge=1, le=32_767, description="Environments per tenant, production included.")
    default_flags: dict[str, bool] = Field(default_factory=dict)


class PlanUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    rate_limit_per_minute: int | None = Field(None, ge=1, le=2_147_483_647)
    burst: int | None = Field(None, ge=0, le=2_147_483_647)
    daily_quota: int | None = Field(None, ge=0, le=2_147_483_647)
    max_environments: int | None = Field(None, ge=1, le=32_767)
    default_flags: dict[str, bool] | None = None


# ------------------------------------------------------------------------------- flags
KIND = Literal["boolean", "string", "number", "json"]
CONDITION_OP = Literal[
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "lt",
    "lte",
    "gt",
    "gte",
    "semver_eq",
    "semver_lt",
    "semver_lte",
    "semver_gt",
    "semver_gte",
    "before",
    "after",
]


class Variant(Schema):
    key: str = Field(pattern=FLAG_KEY, description="Unique within the flag.")
    value: Any = Field(description="A value of the flag's kind (and JSON Schema, for json flags).")
    weight: int = Field(0, ge=0, le=100, description="Percent of subjects; a flag's weights sum to 0 or 100.")


class Serve(Schema):
    enabled: bool = True
    variant: str | None = Field(None, description="A variant's key; or give `value`, or neither (the default).")
    value: Any = Field(None, description="A value of the flag's kind; only for an enabled typed flag.")


class Rule(Schema):
    segment: str | None = Field(None, description="A segment's key; null: every tenant and subject.")
    percent: int = Field(100, ge=0, le=100)
    bucket_by: Literal["subject", "tenant"] = "subject"
    serve: Serve


class Condition(Schema):
    attribute: str = Field(
        max_length=200,
        description="subject, context.<name>, tenant.settings.<name>, tenant.id, tenant.slug, tenant.plan, "
        "tenant.status or tenant.labels.",
    )
    op: CONDITION_OP
    values: list[Any] = Field(min_length=1, max_length=100, description="Strings or numbers.")


class FlagOut(Schema):
    key: str
    description: str
    kind: KIND
    default: bool = Field(description="Whether the flag is on where no override, rule or plan decides.")
    default_value: Any = Field(description="Typed flags: the value served when on; null for booleans.")
    variants: list[Variant]
    rules: list[Rule]
    schema_: dict[str, Any] | None = Field(alias="schema", description="json flags: the JSON Schema of every value.")
    requires_approval: bool
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
    kind: KIND = Field("boolean", description="Permanent: clients parse the flag's value by its kind.")
    default: bool = False
    default_value: Any = Field(None, description="Required for typed flags; null (or absent) for booleans.")
    variants: list[Variant] = Field(default_factory=list, max_length=20)
    rules: list[Rule] = Field(default_factory=list, max_length=50)
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="json flags only: a JSON Schema.")
    requires_approval: bool = False
    tenant_editable: bool = False
    risky: bool = False


class FlagUpdate(Schema):
    description: str | None = Field(None, max_length=2000)
    kind: KIND | None = Field(None, description="Permanent: only the flag's own kind is accepted (409 otherwise).")
    default: bool | None = None
    default_value: Any = None
    variants: list[Variant] | None = Field(None, max_length=20)
    rules: list[Rule] | None = Field(None, max_length=50)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    requires_approval: bool | None = None
    tenant_editable: bool | None = None
    risky: bool | None = None
    archived: bool | None = None


class SegmentOut(Schema):
    key: str
    name: str
    description: str
    conditions: list[Condition]
    created_at: datetime
    updated_at: datetime


class SegmentPage(Page):
    items: list[SegmentOut]


class SegmentCreate(Schema):
    key: str = Field(pattern=FLAG_KEY)
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=2000)
    conditions: list[Condition] = Field(
        default_factory=list, max_length=20, description="All must hold; none: every tenant and subject."
    )


class SegmentUpdate(Schema):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    conditions: list[Condition] | None = Field(None, max_length=20)


class OverrideOut(Schema):
    tenant: str
    environment: str = Field(description="The environment the override belongs to: production, or another's key.")
    flag: str
    enabled: bool
    rollout_percent: int
    variant: str | None = Field(description="Typed flags: the variant the override serves, if any.")
    value: Any = Field(description="Typed flags: the value the override serves, if any (null: none).")
    owner_variants: list[str] = Field(description="The variants the tenant's owners may pick among.")
    source: Literal["admin", "owner"]
    updated_at: datetime


class OverrideList(Schema):
    items: list[OverrideOut]


class OverrideIn(Schema):
    enabled: bool
    rollout_percent: int = Field(100, ge=0, le=100)
    variant: str | None = Field(None, max_length=64, description="Typed flags: serve this variant (or a value).")
    value: Any = Field(None, description="Typed flags: serve this value (or a variant); null: the flag's own.")
    owner_variants: list[str] = Field(
        default_factory=list, max_length=20, description="Typed flags: the variants owners may pick among."
    )


# ------------------------------------------------------------------------------ API keys
class ApiKeyOut(Schema):
    prefix: str
    tenant: str
    environment: str = Field(description="The environment whose flags the key reads (fixed at issue).")
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
    environment: str = Field(
        "production", min_length=1, max_length=32, description="One of the tenant's environments; fixed at issue."
    )


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
    environment: str = Field(description="The environment the choice belongs to: production, or another's key.")
    flag: str
    enabled: bool
    variant: str | None = Field(description="The owner's pick among the override's owner_variants, if any.")
    updated_by: str | None = Field(description="The username of who made the choice, if known.")
    updated_at: datetime


class OwnerTogglePage(Page):
    items: list[OwnerToggleOut]


class OffboardIn(Schema):
    reason: str = Field(min_length=1, max_length=500)


# --------------------------------------------------------------------------- environments
ENVIRONMENT_KEY = r"^[a-z][a-z0-9-]{0,31}$"
LAYER = Literal["overrides", "owner_toggles"]


class EnvironmentCounts(Schema):
    overrides: int
    owner_toggles: int
    live_api_keys: int = Field(description="Keys not revoked that read this environment (expired ones included).")


class EnvironmentOut(Schema):
    tenant: str
    key: str = Field(description="production (every tenant's, never deleted) or the key of another environment.")
    name: str
    created_at: datetime = Field(description="production's is the tenant's creation time.")
    counts: EnvironmentCounts


class EnvironmentList(Schema):
    items: list[EnvironmentOut] = Field(description="production first, then the others by key.")
    max_environments: int = Field(description="How many the tenant's plan allows, production included.")


class EnvironmentCreate(Schema):
    key: str = Field(
        min_length=1, max_length=64, description="1-32 characters a-z, 0-9, '-', starting with a letter: staging."
    )
    name: str = Field("", max_length=100)


class LayerChangeOut(Schema):
    flag: str
    layer: LAYER
    verb: Literal["add", "change", "remove"]
    before: dict[str, Any] | None = Field(description="The target's layer now; null: none.")
    after: dict[str, Any] | None = Field(description="The source's layer, which the target gets; null: removed.")


class EnvironmentDiffOut(Schema):
    tenant: str
    source: str
    target: str
    layers: list[LAYER]
    digest: str = Field(description="Send it back to promote exactly this diff.")
    changes: list[LayerChangeOut]


class PromotionOut(EnvironmentDiffOut):
    applied: bool = Field(description="False when there was nothing to change.")


class PromoteIn(Schema):
    from_: str = Field(alias="from", min_length=1, max_length=64, description="The source environment's key.")
    digest: str = Field(min_length=1, max_length=64, description="The digest of the diff you reviewed.")
    layers: list[str] | None = Field(None, max_length=2, description="overrides, owner_toggles; default: both.")


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
