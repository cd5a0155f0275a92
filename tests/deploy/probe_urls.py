"""The app's URLs plus `/probe/`, a view that round-trips the cache, the session and get_redis()."""

from django.core.cache import cache
from django.http import JsonResponse
from django.urls import path

from agentapi_admin.urls import urlpatterns as app_urlpatterns
from resilience.breakers.registry import breaker
from resilience.breakers.selectors import breaker_state
from resilience.connection import get_redis, key
from resilience.ratelimit.limiter import RateLimiter

PROBE_BREAKER = "deploy.probe"


def probe(request):
    """Bump a session counter; set the cache and a raw key when ?set= is given; report all three.

    `?hit=1` also spends one unit of a rate limit, `?open=1` opens a named breaker;
    the limiter's remaining allowance and the breaker's state are always reported.
    """
    request.session["hits"] = request.session.get("hits", 0) + 1
    value = request.GET.get("set")
    client = get_redis()
    if value is not None:
        cache.set("probe", value, timeout=3600)
        client.set(key("probe", "raw"), value, ex=3600)
    raw = client.get(key("probe", "raw"))
    limit = None
    if request.GET.get("hit"):
        decision = RateLimiter().hit("ip", None, "deploy-probe", limit=10, burst=5, window=3600)
        limit = {"remaining": decision.remaining, "degraded": decision.degraded}
    if request.GET.get("open"):
        breaker(PROBE_BREAKER).open()
    state = breaker_state(PROBE_BREAKER)
    return JsonResponse(
        {
            "hits": request.session["hits"],
            "cache": cache.get("probe"),
            "raw": raw.decode() if raw is not None else None,
            "limit": limit,
            "breaker": {"state": state.state, "storage": state.storage},
            # Which server answered, so a failover test can see the master change.
            "redis_port": client.info("server")["tcp_port"],
        }
    )


urlpatterns = [*app_urlpatterns, path("probe/", probe)]
