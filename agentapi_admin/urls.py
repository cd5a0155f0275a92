"""Root URL configuration."""

from django.contrib import admin
from django.urls import path, re_path

from resilience import views as resilience_views
from tenants.api.views import api_not_found, api_urls

urlpatterns = [
    path("healthz", resilience_views.healthz, name="healthz"),
    path("readyz", resilience_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    re_path(r"^api/v1/", api_not_found),
]
