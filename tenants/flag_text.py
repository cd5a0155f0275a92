"""Flag answers in words, the same in the admin and the portal: a rule, and the layers a tenant's answer has."""

from __future__ import annotations

import json
from typing import Any


def rule_text(rule: dict) -> str:
    """Describe a flag-level rule: its audience, percentage and what it serves ("segment eu, 30 % by subject → on")."""
    audience = f"segment {rule['segment']}" if rule.get("segment") else "everyone"
    percent = int(rule.get("percent", 100))
    share = "" if percent >= 100 else f", {percent} % by {rule.get('bucket_by', 'subject')}"
    return f"{audience}{share} → {serve_text(rule.get('serve') or {})}"


def serve_text(serve: dict) -> str:
    """Describe what a rule or an override serves: off, on, a variant or a value."""
    if not serve.get("enabled", True):
        return "off"
    if serve.get("variant"):
        return f"variant {serve['variant']}"
    if serve.get("value") is not None:
        return f"value {json.dumps(serve['value'])}"
    return "on"


def platform_text(platform: dict | None) -> str:
    """Describe the platform's override ("30 % rollout of variant b"), or "" when there is none."""
    if platform is None:
        return ""
    if not platform.get("enabled"):
        return "off"
    served = serve_text({"enabled": True, "variant": platform.get("variant"), "value": platform.get("value")})
    percent = int(platform.get("percent", 100))
    text = f"{percent} % rollout" + ("" if served == "on" else f" of {served}") if percent < 100 else served
    if platform.get("owner_variants"):
        text += f" (owners may pick {', '.join(platform['owner_variants'])})"
    return text


def owner_text(owner_enabled: bool | None, owner_variant: str | None) -> str:
    """Describe the tenant owner's own choice, or "" when they made none."""
    if owner_enabled is None:
        return ""
    if not owner_enabled:
        return "off"
    return f"on, variant {owner_variant}" if owner_variant else "on"


def layers_text(row: Any, *, owner_label: str = "owner") -> str:
    """Describe both layers of an explained flag: "platform: 30 % rollout · owner: on" ("" when neither is set)."""
    parts = []
    platform = platform_text(row.platform)
    if platform:
        parts.append(f"platform: {platform}")
    owner = owner_text(row.owner_enabled, row.owner_variant)
    if owner:
        parts.append(f"{owner_label}: {owner}")
    return " · ".join(parts)
