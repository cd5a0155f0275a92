"""The admin's "History" page of tenants, plans, flags and keys, read from the audit trail."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse

from agentapi_admin.admin_base import ModelAdminMixin
from audit.display import audit_diff_html
from tenants.selectors import audit_for_object

HISTORY_PER_PAGE = 50


class AuditHistoryMixin(ModelAdminMixin):
    """Replace Django's LogEntry history (which misses writes made outside the admin) with the audit trail."""

    object_history_template = "admin/audit_history.html"

    def history_view(self, request, object_id, extra_context=None):
        opts = self.model._meta
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            # Private ModelAdmin API (what Django's own history_view calls), absent from django-stubs.
            return self._get_obj_does_not_exist_redirect(request, opts, object_id)  # type: ignore[attr-defined]
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        paginator = Paginator(audit_for_object(obj), HISTORY_PER_PAGE)
        page = paginator.get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change history: {obj}",
            "subtitle": None,
            "module_name": str(opts.verbose_name_plural).capitalize(),
            "object": obj,
            "opts": opts,
            "page": page,
            "events": [(event, audit_diff_html(event)) for event in page],
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)
