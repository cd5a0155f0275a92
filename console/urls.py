"""URLs of the ops pages, mounted at /admin/ops/ before the admin site."""

from django.urls import path

from console import views

app_name = "ops"

urlpatterns = [
    path("redis/", views.redis_health, name="redis"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/revoke/", views.session_revoke, name="session-revoke"),
    path("sessions/revoke-all/", views.sessions_revoke_all, name="sessions-revoke-all"),
    path("ratelimits/", views.ratelimits, name="ratelimits"),
    path("ratelimits/reset/", views.ratelimit_reset, name="ratelimit-reset"),
    path("ratelimits/reset-tenant/", views.ratelimit_reset_tenant, name="ratelimit-reset-tenant"),
    path("breakers/", views.breakers, name="breakers"),
    path("breakers/action/", views.breaker_action, name="breaker-action"),
]
