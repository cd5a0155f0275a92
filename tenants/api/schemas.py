"""Response shapes of the service API, for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Schema

from tenants.settings_schema import TenantSettings

Reason = Literal["default", "plan", "admin_override", "owner_toggle", "rollout", "archived"]


class EvaluatedFlagOut(Schema):
    enabled: bool
    reason: Reason
    version: int


class TenantOut(Schema):
    id: str
    slug: str
    name: str
    status: Literal["trial", "active"]
    upstream_url: str


class PlanOut(Schema):
    code: str
    name: str


class LimitsOut(Schema):
    requests_per_minute: int
    burst: int
    daily_quota: int | None


class BootstrapFlagOut(EvaluatedFlagOut):
    rollout_percent: int = Field(
        description="With reason `rollout`: the share of subjects the flag is on for (evaluate locally with the "
        "documented bucket function); 100 otherwise."
    )


class BootstrapOut(Schema):
    tenant: TenantOut
    plan: PlanOut
    limits: LimitsOut
    settings: TenantSettings
    flags: dict[str, BootstrapFlagOut]
    cache_version: int


class FlagOut(Schema):
    key: str
    subject: str
    enabled: bool
    reason: Reason
    version: int
