"""Bench-only URLs: the project's URLs plus a bare JSON view as the reference."""

from django.http import JsonResponse
from django.urls import include, path


def bare(request):
    """Return a small JSON document with no I/O: the reference for 'a Django view served this way'."""
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), path("", include("agentapi_admin.urls"))]
