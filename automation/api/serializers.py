"""The representations the admin API answers with (their canonical JSON is what each ETag digests)."""

from __future__ import annotations

from audit.models import AuditEvent
from tenants.models import ApiKey, Flag, Plan, Segment, Tenant, TenantFlag


def tenant_data(tenant: Tenant) -> dict:
    return {
        "id": str(tenant.pk),
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "status_reason": tenant.status_reason,
        "plan": tenant.plan.code,
        "settings": tenant.settings,
        "labels": list(tenant.labels or []),
        "upstream_url": tenant.upstream_url,
        "has_upstream_credentials": bool(tenant.upstream_credentials),
        "created_at": tenant.created_at,
        "updated_at": tenant.updated_at,
    }


def plan_data(plan: Plan) -> dict:
    return {
        "code": plan.code,
        "name": plan.name,
        "rate_limit_per_minute": plan.rate_limit_per_minute,
        "burst": plan.burst,
        "daily_quota": plan.daily_quota,
        "max_environments": plan.max_environments,
        "default_flags": plan.default_flags,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
    }


def flag_data(flag: Flag) -> dict:
    return {
        "key": flag.key,
        "description": flag.description,
        "kind": flag.kind,
        "default": flag.default,
        "default_value": flag.default_value,
        "variants": flag.variants,
        "rules": flag.rules,
        "schema": flag.schema,
        "requires_approval": flag.requires_approval,
        "tenant_editable": flag.tenant_editable,
        "risky": flag.risky,
        "archived": flag.archived,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
    }


def segment_data(segment: Segment) -> dict:
    return {
        "key": segment.key,
        "name": segment.name,
        "description": segment.description,
        "conditions": segment.conditions,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


def override_data(override: TenantFlag) -> dict:
    return {
        "tenant": override.tenant.slug,
        "environment": override.environment,
        "flag": override.flag.key,
        "enabled": override.enabled,
        "rollout_percent": override.rollout_percent,
        "variant": override.variant or None,
        "value": override.value,
        "owner_variants": list(override.owner_variants or []),
        "source": override.source,
        "updated_at": override.updated_at,
    }


def apikey_data(api_key: ApiKey) -> dict:
    return {
        "prefix": api_key.prefix,
        "tenant": api_key.tenant.slug,
        "environment": api_key.environment,
        "name": api_key.name,
        "scopes": api_key.scopes,
        "created_at": api_key.created_at,
        "expires_at": api_key.expires_at,
        "revoked_at": api_key.revoked_at,
        "last_used_at": api_key.last_used_at,
    }


def apikey_version(api_key: ApiKey) -> dict:
    """Return what a key's ETag digests: its data without `last_used_at`, which every request may move."""
    data = apikey_data(api_key)
    del data["last_used_at"]
    return data


def audit_data(event: AuditEvent) -> dict:
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "actor": event.actor_label,
        "action": event.action,
        "tenant": event.tenant.slug if event.tenant is not None else None,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "ip": event.ip,
    }


def webhook_endpoint_data(endpoint) -> dict:
    """An endpoint as the API shows it: never a secret, nor a secret's hint."""
    return {
        "id": endpoint.pk,
        "tenant": endpoint.tenant.slug if endpoint.tenant_id else None,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def webhook_delivery_data(delivery) -> dict:
    return {
        "id": delivery.pk,
        "endpoint": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event.type,
        "status": delivery.status,
        "manual": delivery.manual,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_latency_ms": delivery.last_latency_ms,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
    }


def owner_toggle_data(toggle) -> dict:
    return {
        "tenant": toggle.tenant.slug,
        "environment": toggle.environment,
        "flag": toggle.flag.key,
        "enabled": toggle.enabled,
        "variant": toggle.variant or None,
        "updated_by": toggle.updated_by.get_username() if toggle.updated_by_id else None,
        "updated_at": toggle.updated_at,
    }


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def change_request_data(change) -> dict:
    return {
        "id": change.pk,
        "url": f"/api/v1/admin/changes/{change.pk}",
        "operation": change.operation,
        "params": change.params,
        "summary": change.summary,
        "state": change.state,
        "flag": change.flag_key,
        "tenant": change.tenant.slug if change.tenant_id else None,
        "author": _username(change.author),
        "reason": change.reason,
        "requires_approval": change.requires_approval,
        "apply_at": change.apply_at,
        "revert_at": change.revert_at,
        "approved_by": _username(change.approved_by),
        "approved_at": change.approved_at,
        "closed_by": _username(change.closed_by),
        "closed_at": change.closed_at,
        "applied_at": change.applied_at,
        "reverted_at": change.reverted_at,
        "before": change.before,
        "inverse": change.inverse,
        "last_error": change.last_error,
        "created_at": change.created_at,
        "updated_at": change.updated_at,
    }
