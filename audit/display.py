"""How the admin shows an audit event: before/after as JSON, related rows by name, a link to the object."""

from __future__ import annotations

import json
from typing import cast

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.models import AuditEvent

MISSING = "—"


def audit_model(event: AuditEvent) -> type[models.Model] | None:
    """Return the model named by the event's object_type, or None for non-model objects (breakers, sessions)."""
    try:
        return apps.get_model(event.object_type)
    except (LookupError, ValueError):
        return None


def audit_related_names(event: AuditEvent) -> dict[tuple, str]:
    """Return {(field, id): name} for the snapshot values that are ids of related rows (a plan, a user)."""
    model = audit_model(event)
    if model is None:
        return {}
    names = {}
    for snapshot in (event.before or {}, event.after or {}):
        for name, value in snapshot.items():
            if value is None or not isinstance(value, int | str) or (name, value) in names:
                continue
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.many_to_one:
                continue
            related_model = cast(type[models.Model], field.related_model)  # resolved: the apps are loaded
            try:
                related = related_model._default_manager.filter(pk=value).first()
            except (ValueError, ValidationError):
                continue
            gone = f"deleted {related_model._meta.verbose_name}"
            names[(name, value)] = str(related) if related is not None else gone
    return names


def audit_value_html(snapshot: dict | None, key: str, names: dict[tuple, str]) -> SafeString:
    """Render one snapshot value: a related row's name, or the value as JSON; a missing key is a dash."""
    if snapshot is None or key not in snapshot:
        return format_html('<span class="audit-missing">{}</span>', MISSING)
    value = snapshot[key]
    name = names.get((key, value)) if isinstance(value, int | str) else None
    if name is not None:
        return format_html('<span class="audit-name" title="id {}">{}</span>', value, name)
    return format_html("<code>{}</code>", json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def audit_diff_html(event: AuditEvent) -> SafeString:
    """Render the event's before/after as a table; changed fields carry class="changed" (styled by admin.css)."""
    before, after = event.before, event.after
    keys = sorted(set(before or {}) | set(after or {}))
    if not keys:
        return format_html('<span class="audit-missing">{}</span>', MISSING)
    names = audit_related_names(event)
    rows = format_html_join(
        "",
        '<tr{}><th scope="row">{}</th><td>{}</td><td>{}</td></tr>',
        (
            (
                mark_safe(' class="changed"') if (before or {}).get(k) != (after or {}).get(k) else "",
                k,
                audit_value_html(before, k, names),
                audit_value_html(after, k, names),
            )
            for k in keys
        ),
    )
    return format_html(
        '<table class="audit-diff"><thead><tr><th scope="col">field</th><th scope="col">before</th>'
        '<th scope="col">after</th></tr></thead><tbody>{}</tbody></table>',
        rows,
    )


def audit_object_url(event: AuditEvent) -> str | None:
    """Return the admin change URL of the event's object, or None when it has no admin page."""
    model = audit_model(event)
    if model is None or not event.object_id:
        return None
    object_id: object
    if model._meta.label_lower == "tenants.tenantflag" and event.tenant_id:
        model, object_id = apps.get_model("tenants.tenant"), event.tenant_id
    else:
        object_id = event.object_id
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None


def audit_object_label(event: AuditEvent) -> str:
    """Return a short human name of what the event is about ("tenant acme", "plan Gold")."""
    model = audit_model(event)
    if model is None:
        return f"{event.object_type} {event.object_id}".strip()
    if model._meta.label_lower == "tenants.tenantflag":
        return f"flag {event.object_id} on {event.tenant}" if event.tenant_id else f"flag {event.object_id}"
    try:
        row = model._default_manager.filter(pk=event.object_id).first()
    except (ValueError, ValidationError):
        row = None
    return f"{model._meta.verbose_name} {row if row is not None else event.object_id}"
