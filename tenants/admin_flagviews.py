"""The admin's read-only flag pages: every tenant's answer for one flag (with CSV), and the stale-flag report."""

from __future__ import annotations

import csv
import json
import re

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path

from agentapi_admin.admin_base import ModelAdminMixin
from tenants import flagrules
from tenants.flagreport import FlagTenantFilters, FlagTenants, environment_keys, flags_staleness
from tenants.models import ENVIRONMENT_KEY_PATTERN, PRODUCTION, Plan, Tenant

TENANTS_PER_PAGE = 50
STALE_DAYS_DEFAULT = 30
STALE_DAYS_MAX = 3650
CSV_COLUMNS = (
    "tenant",
    "environment",
    "status",
    "plan",
    "labels",
    "enabled",
    "value",
    "variant",
    "reason",
    "rule",
    "segment",
    "override",
    "owner_toggle",
)


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def filters_from(query) -> FlagTenantFilters:
    """Return the per-flag page's filters from a query string; unknown choices filter nothing."""
    reason = query.get("reason", "")
    status = query.get("status", "")
    environment = query.get("environment", "").strip()
    return FlagTenantFilters(
        reason=reason if reason in flagrules.REASONS else "",
        value=query.get("value", "").strip()[:200],
        plan=query.get("plan", "").strip()[:40],
        status=status if status in Tenant.Status.values else "",
        label=query.get("label", "").strip()[:100],
        has_override=_yes_no(query.get("override", "")),
        has_owner_toggle=_yes_no(query.get("owner", "")),
        environment=environment if environment == PRODUCTION or re.match(ENVIRONMENT_KEY_PATTERN, environment) else "",
    )


def _csv_row(row) -> list:
    return [
        row.slug,
        row.environment,
        row.status,
        row.plan,
        " ".join(row.labels),
        "true" if row.enabled else "false",
        row.value_json,
        row.variant or "",
        row.reason,
        row.rule or "",
        row.segment or "",
        json.dumps(row.override, sort_keys=True) if row.override else "",
        json.dumps(row.owner_toggle, sort_keys=True) if row.owner_toggle else "",
    ]


class FlagViewsMixin(ModelAdminMixin):
    """Add the per-flag tenants page (`<id>/tenants/`) and the stale report (`stale/`) to the flag admin."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path("stale/", self.admin_site.admin_view(self.stale_view), name="{}_{}_stale".format(*info)),
            path(
                "<path:object_id>/tenants/",
                self.admin_site.admin_view(self.tenants_view),
                name="{}_{}_tenants".format(*info),
            ),
        ]
        return own + super().get_urls()

    def _context(self, request, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            **extra,
        }

    def tenants_view(self, request, object_id):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])  # read-only
        flag = self.get_object(request, unquote(object_id))
        if flag is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # private in the stubs; what the admin itself calls
        if not self.has_view_or_change_permission(request, flag):
            raise PermissionDenied
        filters = filters_from(request.GET)
        tenants = FlagTenants(flag, filters)
        if request.GET.get("format") == "csv":
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="flag-{flag.key}-tenants.csv"'
            writer = csv.writer(response)
            writer.writerow(CSV_COLUMNS)
            for row in tenants.iter_all():
                writer.writerow(_csv_row(row))
            return response
        page = Paginator(tenants.rows(), TENANTS_PER_PAGE).get_page(request.GET.get("p"))
        query = request.GET.copy()
        query.pop("p", None)
        query.pop("format", None)
        context = self._context(
            request,
            f"Tenants: {flag.key}",
            object=flag,
            original=flag,
            page=page,
            rows=tenants.page_rows(page.object_list),
            answered=filters.needs_answers,
            filters=filters,
            query=query.urlencode(),
            environments=environment_keys(),
            reasons=flagrules.REASONS,
            statuses=Tenant.Status.choices,
            plans=Plan.objects.order_by("code").values_list("code", flat=True),
            selected={key: request.GET.get(key, "") for key in ("override", "owner")},
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/tenants/flag/tenants.html", context)

    def stale_view(self, request):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", STALE_DAYS_DEFAULT))
        except ValueError:
            days = STALE_DAYS_DEFAULT
        days = min(max(days, 1), STALE_DAYS_MAX)
        report = flags_staleness(days)
        context = self._context(request, "Stale flags", report=report, days=days)
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/tenants/flag/stale.html", context)
