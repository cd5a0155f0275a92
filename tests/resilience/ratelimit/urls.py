"""URLs for the limiter's HTTP tests: one path under the middleware, one decorated view."""

from django.http import JsonResponse
from django.urls import path

from resilience.ratelimit.decorators import rate_limited
from tenants.models import Tenant


def ping(request):
    return JsonResponse({"ok": True})


def with_tenant(view):
    """Stand in for API-key authentication: the tenant comes from the X-Tenant header."""

    def wrapped(request, *args, **kwargs):
        slug = request.headers.get("X-Tenant")
        request.tenant = Tenant.objects.select_related("plan").get(slug=slug) if slug else None
        return view(request, *args, **kwargs)

    return wrapped


@with_tenant
@rate_limited(scopes=("tenant",))
def tenant_view(request):
    return JsonResponse({"tenant": request.tenant.slug})


urlpatterns = [
    path("api/ping", ping),
    path("svc/tenant", tenant_view),
    path("open/ping", ping),
]
