"""Django admin for the audit trail: read-only, with a before → after table per event, exportable."""

from __future__ import annotations

from django.contrib import admin

from agentapi_admin.admin_base import GuardedModelAdmin, admin_time
from agentapi_admin.admin_export import Export, ExportActionsMixin
from audit.display import audit_diff_html
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ExportActionsMixin, GuardedModelAdmin):
    # "object" joins type and id and may wrap (static/tenants/admin.css), so "IP" stays on screen at 1366 px.
    list_display = ["when", "actor_label", "action", "tenant", "object", "ip"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_label", "action", "object_id", "reason"]
    date_hierarchy = "created_at"
    fields = ("created_at", "actor_label", "action", "tenant", "object_type", "object_id", "reason", "ip", "diff")
    readonly_fields = fields  # one tuple for both: a list would not fit readonly_fields' type
    export = Export(
        stem="audit",
        columns=(
            ("id", "id"),
            ("created_at", "created_at"),
            ("actor", "actor_label"),
            ("action", "action"),
            ("tenant", "tenant__slug"),
            ("object_type", "object_type"),
            ("object_id", "object_id"),
            ("reason", "reason"),
            ("ip", "ip"),
            ("before", "before"),
            ("after", "after"),
        ),
    )

    @admin.display(description="before → after")
    def diff(self, obj):
        return audit_diff_html(obj)

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, obj):
        return admin_time(obj.created_at)

    @admin.display(description="object", ordering="object_type")
    def object(self, obj):
        return f"{obj.object_type} {obj.object_id}".strip() or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
