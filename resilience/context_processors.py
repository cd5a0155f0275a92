"""Template context shared by admin and portal pages."""

from django.conf import settings


def redis_mode(request) -> dict:
    """Expose whether Redis is disabled so pages can say so."""
    return {"redis_disabled": not settings.RESILIENCE_REDIS_ENABLED}
