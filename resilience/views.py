"""Liveness and readiness endpoints for load balancers and orchestrators."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from resilience.selectors import readiness


@never_cache
@require_GET
def healthz(request):
    """Answer 200 while the process can serve requests; touches no dependency."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Answer 200 when the database and Redis answer (degraded: answering, not writing), else 503 naming what failed.

    Redis refusing writes is reported but stays 200: every replica shares that Redis, so
    failing readiness would take them all out of the load balancer for a partial fault.
    """
    checks = readiness()
    failed = [check.name for check in checks if not check.ok]
    degraded = [check.name for check in checks if check.degraded]
    body = {
        "status": "fail" if failed else "degraded" if degraded else "ok",
        "failed": failed,
        "degraded": degraded,
        "checks": {check.name: check.as_dict() for check in checks},
    }
    return JsonResponse(body, status=503 if failed else 200)
