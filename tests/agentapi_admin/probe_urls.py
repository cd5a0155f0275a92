"""Test-only URLs: the app's URLs plus a probe under /api/ and one outside it, reporting what middleware set."""

from django.http import JsonResponse
from django.urls import path

from agentapi_admin.urls import urlpatterns as app_urlpatterns


def probe(request):
    """Return which browser-only request attributes the middleware chain attached."""
    names = {"session": "session", "user": "user", "messages": "_messages", "csp_nonce": "csp_nonce"}
    return JsonResponse({name: hasattr(request, attribute) for name, attribute in names.items()})


urlpatterns = [path("api/probe", probe), path("page/probe", probe), *app_urlpatterns]
