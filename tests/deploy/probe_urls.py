"""The app's URLs plus `/probe/`, a view that round-trips the cache, the session and get_redis()."""

from django.core.cache import cache
from django.http import JsonResponse
from django.urls import path

from agentapi_admin.urls import urlpatterns as app_urlpatterns
from resilience.connection import get_redis, key


def probe(request):
    """Bump a session counter; set the cache and a raw key when ?set= is given; report all three."""
    request.session["hits"] = request.session.get("hits", 0) + 1
    value = request.GET.get("set")
    client = get_redis()
    if value is not None:
        cache.set("probe", value, timeout=3600)
        client.set(key("probe", "raw"), value, ex=3600)
    raw = client.get(key("probe", "raw"))
    return JsonResponse(
        {
            "hits": request.session["hits"],
            "cache": cache.get("probe"),
            "raw": raw.decode() if raw is not None else None,
            # Which server answered, so a failover test can see the master change.
            "redis_port": client.info("server")["tcp_port"],
        }
    )


urlpatterns = [*app_urlpatterns, path("probe/", probe)]
