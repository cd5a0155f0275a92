"""Bench-only URLs: the app's URLs plus `/bench/bare`, never part of the production URLconf."""

from django.core.cache import cache
from django.http import JsonResponse
from django.urls import path

from agentapi_admin.urls import urlpatterns as app_urlpatterns


def bare(request):
    """Return a small JSON document with no I/O: the reference for 'a Django view served this way'."""
    return JsonResponse({"ok": True, "tenant": "bench", "flags": {"beta": {"enabled": True}}})


def cache_get(request):
    """Return the same document after one django-redis GET: the issue's '0.68 of bare' reference point."""
    return JsonResponse({"ok": True, "cached": cache.get("bench:reference")})


urlpatterns = [*app_urlpatterns, path("bench/bare", bare), path("bench/cache-get", cache_get)]
