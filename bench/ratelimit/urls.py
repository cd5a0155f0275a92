"""Bench-only URLs: a bare JSON view, served plain and under the rate-limit middleware (/api/ prefix)."""

from django.http import JsonResponse
from django.urls import path


def bare(request):
    """Return a small JSON document with no I/O: the reference for 'a Django view served this way'."""
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), path("api/bench/bare", bare)]
