"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from resilience import views as resilience_views

urlpatterns = [
    path("healthz", resilience_views.healthz, name="healthz"),
    path("readyz", resilience_views.readyz, name="readyz"),
    # Before admin.site.urls, whose catch-all would answer these paths with a 404.
    path("admin/ops/", include("resilience.ops.urls")),
    path("admin/", admin.site.urls),
]
