"""The documented schema of `Tenant.settings` (docs/tenants.md lists it); validation names the bad field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, ValidationError

from tenants.exceptions import InvalidSettings


# Printable text only: control characters (NUL above all, which PostgreSQL's jsonb
# refuses) have no place in a label and would fail the write instead of the form.
def _printable(value: str) -> str:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters (such as NUL or newlines)")
    return value


LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable)]
LabelValue = Annotated[str, StringConstraints(max_length=256), AfterValidator(_printable)]


class TenantSettings(BaseModel):
    """Per-tenant configuration handed to AgentAPI replicas in the bootstrap document."""

    model_config = ConfigDict(extra="forbid")

    agent_type: Literal["claude", "goose", "aider", "codex", "custom"] = "claude"
    max_concurrent_agents: int = Field(5, ge=1, le=1000)
    session_timeout_seconds: int = Field(3600, ge=60, le=86_400)
    allowed_origins: list[HttpUrl] = Field(default_factory=list, max_length=50)
    webhook_url: HttpUrl | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=20)


def settings_validate(value: object) -> dict:
    """Return the settings as stored (only the keys given, normalised) or raise InvalidSettings naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSettings(
            "settings must be a JSON object.", field="settings", errors={"settings": [("", "must be a JSON object")]}
        )
    try:
        model = TenantSettings.model_validate(value)
    except ValidationError as exc:
        raise settings_error(exc) from None
    return model.model_dump(mode="json", exclude_unset=True)


def settings_error(exc: ValidationError) -> InvalidSettings:
    """Turn every pydantic error into one InvalidSettings: `errors` maps each top-level key to its messages."""
    errors: dict[str, list[tuple[str, str]]] = {}
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = ".".join(loc) or "settings"
        message = "unknown setting (not in the schema)" if error["type"] == "extra_forbidden" else error["msg"]
        errors.setdefault(loc[0] if loc else "settings", []).append((".".join(loc[1:]), message))
        lines.append(f"settings.{where}: {message}")
    first = ".".join(str(part) for part in exc.errors()[0]["loc"]) or "settings"
    return InvalidSettings("; ".join(lines), field=f"settings.{first}", errors=errors)


def settings_effective(stored: dict) -> dict:
    """Return the stored settings with every default filled in."""
    try:
        return TenantSettings.model_validate(stored or {}).model_dump(mode="json")
    except ValidationError:
        # Rows written before a schema change stay readable; defaults cover what no longer parses.
        return TenantSettings().model_dump(mode="json")
