"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from agentapi_admin.metrics import metrics_view
from automation.api.views import admin_api_not_found, admin_api_urls
from portal.views.home import welcome
from resilience import views as resilience_views
from resilience.throttle import throttle_form, throttle_login
from tenants.api.stream import stream_view
from tenants.api.views import api_not_found, api_urls

# The admin's "View site" link leads to the sign-in chooser.
admin.site.site_url = "/"

urlpatterns = [
    path("", welcome, name="welcome"),
    path("healthz", resilience_views.healthz, name="healthz"),
    path("readyz", resilience_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # Before admin.site.urls, whose catch-all would answer these paths with a 404.
    path("admin/ops/", include("console.urls")),
    # Before admin.site.urls so sign-in attempts are throttled per IP and per username.
    path("admin/login/", throttle_login(admin.site.login), name="admin_login_throttled"),
    # admin_view first: only active staff reach the form (others get the admin login), as in the admin itself.
    path(
        "admin/password_change/",
        admin.site.admin_view(throttle_form("password")(admin.site.password_change)),
        name="admin_password_change_throttled",
    ),
    # Admin addresses of models that moved app (the audit trail, the ops pages' index entries) keep working.
    *(
        re_path(
            rf"^admin/{old}/(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{new}/%(rest)s", permanent=True, query_string=True),
        )
        for old, new in [("tenants/auditevent", "audit/auditevent"), ("resilience", "console")]
    ),
    path("admin/", admin.site.urls),
    # Before api/v1/, whose catch-all would answer these paths.
    path("api/v1/admin/", admin_api_urls()),
    re_path(r"^api/v1/admin/", admin_api_not_found),
    path("api/v1/stream", stream_view, name="api_stream"),
    path("api/v1/", api_urls()),
    re_path(r"^api/v1/", api_not_found),
    path("portal/", include("portal.urls")),
]
