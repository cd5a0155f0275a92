"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from resilience import views as resilience_views

urlpatterns = [
    path("healthz", resilience_views.healthz, name="healthz"),
    path("readyz", resilience_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("portal/", include("portal.urls")),
]
