"""Admin index entries for the ops pages (they live at /admin/ops/, see console/views/)."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path

from agentapi_admin.admin_base import GuardedModelAdmin
from console.models import BreakersPage, RateLimitsPage, RedisHealthPage, SessionsPage


class OpsPageAdmin(GuardedModelAdmin):
    """Lists an ops page for every staff user and sends the changelist link to it."""

    page_url_name = ""
    actions = None  # the changelist is a redirect: nothing to select, nothing to run

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect(self.page_url_name)

    def get_urls(self):
        # Only the index link: there is no table behind these models, so no object URLs (they answer 404).
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]


@admin.register(RedisHealthPage)
class RedisHealthPageAdmin(OpsPageAdmin):
    page_url_name = "ops:redis"


@admin.register(RateLimitsPage)
class RateLimitsPageAdmin(OpsPageAdmin):
    page_url_name = "ops:ratelimits"


@admin.register(BreakersPage)
class BreakersPageAdmin(OpsPageAdmin):
    page_url_name = "ops:breakers"


@admin.register(SessionsPage)
class SessionsPageAdmin(OpsPageAdmin):
    page_url_name = "ops:sessions"
