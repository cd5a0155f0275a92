"""Tenants, plans, memberships, feature flags, API keys and daily usage.

Writes go through `tenants.services`; models hold data and database-level rules only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.db.models import Q

FLAG_KEY_PATTERN = r"^[a-z0-9_.-]{1,64}$"
ENVIRONMENT_KEY_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
#: The environment every tenant has (never a row): what existed before environments, and where API keys,
#: overrides and owner toggles go unless told otherwise.
PRODUCTION = "production"
PROBE_UPSTREAM_PERMISSION = "tenants.probe_upstream"


def _key_field() -> models.CharField:
    """A flag's or segment's key: permanent, unique, the same characters clients may use."""
    return models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(FLAG_KEY_PATTERN, "Use 1-64 characters: a-z, 0-9, '_', '.', '-'.")],
    )


def _environment_field() -> models.CharField:
    """The environment a row belongs to: `production` or the key of one of the tenant's `Environment` rows."""
    return models.CharField(max_length=32, default=PRODUCTION, db_index=True)


class Plan(models.Model):
    """A commercial plan: rate limits, quota and default flag values shared by its tenants."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    # Empty limits inherit RATE_LIMIT_REQUESTS_PER_MINUTE / RATE_LIMIT_BURST_SIZE.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    burst = models.PositiveIntegerField(null=True, blank=True)
    daily_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per day; empty is unlimited.")
    max_environments = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="How many environments a tenant may have, production included (at least 1).",
    )
    default_flags = models.JSONField(
        default=dict, blank=True, help_text='Flag defaults for this plan: {"flag_key": true}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code


class Tenant(models.Model):
    """A customer of the AgentAPI deployment."""

    class Status(models.TextChoices):
        TRIAL = "trial", "Trial"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DELETED = "deleted", "Deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIAL, db_index=True)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    settings = models.JSONField(default=dict, blank=True)
    # Free-form tags that segments can target (tenant.labels), e.g. ["eu", "beta-program"].
    labels = models.JSONField(default=list, blank=True, help_text='Tags segments can target, e.g. ["eu", "beta"].')
    # http(s) only: the probe refuses other schemes, so saving one would only hide the mistake.
    upstream_url = models.URLField(
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="AgentAPI base URL; health is GET <url>/status.",
    )
    # Ciphertext from tenants.crypto (AES-256-GCM with a key id); never the plain secret.
    upstream_credentials = models.TextField(blank=True, editable=False)
    # Part of every flag-cache key: bumping it orphans the tenant's cached evaluation.
    cache_version = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [("probe_upstream", "Can test the upstream connection of a tenant (with its credentials)")]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_serving(self) -> bool:
        return self.status in (self.Status.TRIAL, self.Status.ACTIVE)


class Environment(models.Model):
    """One of a tenant's environments besides `production` (which every tenant has, as no row), e.g. `staging`.

    API keys, overrides and owner toggles belong to one environment by key; the plan bounds how many there are.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="environments")
    key = models.CharField(
        max_length=32,
        validators=[
            RegexValidator(ENVIRONMENT_KEY_PATTERN, "Use 1-32 characters: a-z, 0-9, '-', starting with a letter.")
        ],
    )
    name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="environment_unique_tenant_key"),
            models.CheckConstraint(condition=~Q(key=PRODUCTION), name="environment_not_production"),
        ]
        ordering = ["tenant__slug", "key"]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.key}"


class Membership(models.Model):
    """A user's role in a tenant."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]
        ordering = ["tenant__slug", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """An owner's invitation to join a tenant; only a SHA-256 hash of its link token is stored."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    # What the owner typed (a username or an email), matched case-insensitively on accept.
    identifier = models.CharField(max_length=254)
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    expires_at = models.DateTimeField()
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.identifier} to {self.tenant} ({self.state})"


class Segment(models.Model):
    """A reusable audience: conditions (all must hold) over tenant attributes and the evaluation context.

    `conditions` is a list of {"attribute", "op", "values"} checked by `tenants.flagrules`.
    """

    key = _key_field()
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    conditions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Flag(models.Model):
    """A feature flag definition: its kind, values, variants and flag-level rules (docs/flags.md)."""

    class Kind(models.TextChoices):
        BOOLEAN = "boolean", "Boolean"
        STRING = "string", "String"
        NUMBER = "number", "Number"
        JSON = "json", "JSON"

    key = _key_field()
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.BOOLEAN)
    # Whether the flag is on where no override, rule or plan decides.
    default = models.BooleanField(default=False)
    # Typed flags: the value served when on and no variant or rule value applies (null for booleans).
    default_value = models.JSONField(null=True, blank=True)
    # [{"key", "value", "weight"}]: named values; weights (percent, summing to 100) split subjects.
    variants = models.JSONField(default=list, blank=True)
    # Flag-level rules, in order: [{"segment", "percent", "bucket_by", "serve"}], below tenant overrides.
    rules = models.JSONField(default=list, blank=True)
    # JSON flags: every value (default, variants, overrides, rules) must match this JSON Schema.
    schema = models.JSONField(null=True, blank=True)
    requires_approval = models.BooleanField(
        default=False, help_text="A change is a change request another staff user approves before it applies."
    )
    tenant_editable = models.BooleanField(default=False, help_text="Tenant owners and admins may toggle it.")
    risky = models.BooleanField(default=False, help_text="The portal asks for confirmation before a toggle.")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class TenantFlag(models.Model):
    """The platform's override of a flag for one tenant: its bounds for the tenant's own owner toggle.

    Owner toggles are `OwnerToggle` rows since owners stopped replacing the platform's choice;
    `source` stays for rows written before that (all `admin` since migration 0007).
    """

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin override"
        OWNER = "owner", "Owner toggle (before 0007)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="flag_overrides")
    environment = _environment_field()
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="overrides")
    enabled = models.BooleanField()
    rollout_percent = models.PositiveSmallIntegerField(default=100, validators=[MaxValueValidator(100)])
    # Typed flags: what the override serves when on (a variant key, or a value); neither: the flag's own.
    variant = models.CharField(max_length=64, blank=True)
    value = models.JSONField(null=True, blank=True)
    # Bounds for the owner: the variants the tenant's owner may pick among (empty: none).
    owner_variants = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "environment", "flag"], name="tenantflag_unique_tenant_env_flag"),
            models.CheckConstraint(condition=Q(rollout_percent__lte=100), name="tenantflag_rollout_0_100"),
        ]

    def __str__(self) -> str:
        where = self.tenant if self.environment == PRODUCTION else f"{self.tenant}/{self.environment}"
        return f"{where}:{self.flag}={self.enabled}@{self.rollout_percent}%"


class OwnerToggle(models.Model):
    """A tenant owner's on/off choice for a tenant-editable flag, applied within the platform's override."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="owner_toggles")
    environment = _environment_field()
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="owner_toggles")
    enabled = models.BooleanField()
    # The owner's pick among the override's `owner_variants` (blank: none); ignored outside those bounds.
    variant = models.CharField(max_length=64, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "environment", "flag"], name="ownertoggle_unique_tenant_env_flag")
        ]

    def __str__(self) -> str:
        where = self.tenant if self.environment == PRODUCTION else f"{self.tenant}/{self.environment}"
        return f"{where}:{self.flag}={'on' if self.enabled else 'off'} (owner)"


class ApiKey(models.Model):
    """A tenant's API key; only a SHA-256 hash of the secret is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    # Fixed at issue: the key reads this environment's flags (its route names it).
    environment = _environment_field()
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Visible start of the key, for recognition.")
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class UsageDaily(models.Model):
    """A tenant's count of one metric on one UTC day, flushed from Redis counters."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    metric = models.CharField(max_length=32)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "metric"], name="usage_unique_tenant_day_metric")
        ]
        ordering = ["-day", "metric"]
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"

    def __str__(self) -> str:
        return f"{self.tenant} {self.day} {self.metric}={self.count}"


class FlagAskDaily(models.Model):
    """How many requests asked for a flag on one UTC day, summed over tenants (flushed from Redis counters).

    The row keyed `*` counts the tenants that asked for every flag (bootstrap) that day.
    """

    ALL = "*"

    flag_key = models.CharField(max_length=64)
    day = models.DateField()
    asks = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flag_key", "day"], name="flagask_unique_key_day")]
        indexes = [models.Index(fields=["day", "flag_key"], name="flagask_day_key")]
        ordering = ["-day", "flag_key"]
        verbose_name = "daily flag asks"
        verbose_name_plural = "daily flag asks"

    def __str__(self) -> str:
        return f"{self.flag_key} {self.day} asks={self.asks}"


class FlagAskCheckpoint(models.Model):
    """The counts of one tenant-day's asked-flags hash already added to FlagAskDaily, so each ask counts once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    counts = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="flagaskcheckpoint_unique_tenant_day")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}"


class OutboxMessage(models.Model):
    """An effect that must follow a commit (cache invalidation now; webhooks, stream events later).

    Written in the same transaction as the change it follows, delivered after commit
    and retried until delivered, so an outage delays the effect but never loses it.
    """

    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="outbox_pending_idx", condition=Q(delivered_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
