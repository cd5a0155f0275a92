"""Admin index entries for the ops pages (they live at /admin/ops/, see resilience/ops/)."""

from django.contrib import admin
from django.shortcuts import redirect

from resilience.models import BreakersPage, RateLimitsPage, RedisHealthPage, SessionsPage


class OpsPageAdmin(admin.ModelAdmin):
    """Lists an ops page for every staff user and sends the changelist link to it."""

    page_url_name = ""

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
