"""Request and response shapes of the service API, for the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt, StrictStr, StringConstraints

from tenants import flagrules
from tenants.models import FLAG_KEY_PATTERN
from tenants.settings_schema import TenantSettings

# flagrules.REASONS, spelled out for the type checker (tests/tenants/test_api_evaluate.py compares them).
Reason = Literal["archived", "owner_toggle", "admin_override", "rollout", "rule", "plan", "split", "default"]

#: Bounds of POST /api/v1/evaluate (docs/flags.md, "Limits").
SUBJECT_MAX_LENGTH = 200
MAX_CONTEXT_ATTRIBUTES = 50
MAX_CONTEXT_LIST = 100
MAX_EVALUATE_KEYS = 100


class EvaluatedFlagOut(Schema):
    enabled: bool
    reason: Reason
    version: int
    value: Any = Field(
        None,
        description="The flag's value: true/false for a boolean flag; the string, number or JSON value a typed "
        "flag serves (null while it is off).",
    )
    variant: str | None = Field(None, description="The variant served, if a variant decided the value.")
    rule: int | None = Field(
        None, description="With reason `rule`: the 1-based position of the flag-level rule that decided."
    )


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
        description="With reason `rollout`: the share of subjects the flag is on for; 100 otherwise. "
        "`eval` supersedes it."
    )
    eval: dict[str, Any] = Field(
        description="The flag compiled for this tenant: `{kind, version, default_value?, variants?, steps}`. "
        "Evaluate it for any subject and context exactly as POST /api/v1/evaluate does (docs/flags.md, "
        "'Local evaluation'; tests/flags/vectors.json holds the shared cases)."
    )


class BootstrapOut(Schema):
    tenant: TenantOut
    plan: PlanOut
    limits: LimitsOut
    settings: TenantSettings
    flags: dict[str, BootstrapFlagOut]
    cache_version: int


class FlagOut(EvaluatedFlagOut):
    key: str
    subject: str


ContextName = Annotated[str, StringConstraints(pattern=flagrules.CONTEXT_NAME_PATTERN)]
ContextString = Annotated[StrictStr, StringConstraints(max_length=flagrules.MAX_CONTEXT_STRING)]
ContextNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
ContextScalar = ContextString | StrictInt | ContextNumber
ContextValue = ContextScalar | StrictBool | Annotated[list[ContextScalar], Field(max_length=MAX_CONTEXT_LIST)]
FlagKey = Annotated[str, StringConstraints(pattern=FLAG_KEY_PATTERN)]


class EvaluateIn(Schema):
    subject: Annotated[StrictStr, StringConstraints(min_length=1, max_length=SUBJECT_MAX_LENGTH)] | None = Field(
        None, description="Stable id used for rollouts and splits (user, session, …); default: the tenant id."
    )
    context: dict[ContextName, ContextValue] = Field(
        default_factory=dict,
        max_length=MAX_CONTEXT_ATTRIBUTES,
        description="Attributes rules test as `context.<name>`: strings, numbers, booleans or lists of "
        "strings and numbers.",
        json_schema_extra={"propertyNames": {"pattern": flagrules.CONTEXT_NAME_PATTERN}},
    )
    keys: list[FlagKey] | None = Field(
        None, max_length=MAX_EVALUATE_KEYS, description="The flags to evaluate; default: every flag."
    )


class EvaluateOut(Schema):
    subject: str
    flags: dict[str, EvaluatedFlagOut]
    missing: list[str] = Field(
        default_factory=list, description="Requested keys this tenant has no flag for (not an error)."
    )
