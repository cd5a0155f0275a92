"""Django admin for the audit trail: read-only, with a before → after table per event."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agentapi_admin.admin_base import GuardedModelAdmin
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(GuardedModelAdmin):
    list_display = ["created_at", "actor_label", "action", "tenant", "object_type", "object_id", "ip"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_label", "action", "object_id", "reason"]
    date_hierarchy = "created_at"
    fields = ["created_at", "actor_label", "action", "tenant", "object_type", "object_id", "reason", "ip", "diff"]
    readonly_fields = fields

    @admin.display(description="before → after")
    def diff(self, obj):
        before, after = obj.before or {}, obj.after or {}
        keys = sorted(set(before) | set(after))
        if not keys:
            return "—"
        rows = format_html_join(
            "",
            '<tr{}><th scope="row">{}</th><td>{}</td><td>{}</td></tr>',
            (
                (
                    _CHANGED_ROW if before.get(k) != after.get(k) else "",
                    k,
                    _show(before, k),
                    _show(after, k),
                )
                for k in keys
            ),
        )
        return format_html(
            '<table class="audit-diff"><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            rows,
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_CHANGED_ROW = mark_safe(' class="changed" style="background:#fff3cd"')


def _show(snapshot: dict, key: str) -> str:
    return repr(snapshot[key]) if key in snapshot else "—"
