import logging

from django.apps import AppConfig

logger = logging.getLogger("resilience")


class ResilienceConfig(AppConfig):
    name = "resilience"
    verbose_name = "Resilience"

    def ready(self) -> None:
        from django.conf import settings

        from resilience import scrape

        scrape.register()

        if not settings.RESILIENCE_REDIS_ENABLED:
            logger.warning(
                "REDIS_ENABLE=false: cache is in-process (LocMemCache, one per worker), sessions are stored "
                "in the database (SESSION_STORAGE=%s requested), rate limits and breaker state are not "
                "shared between processes. Use this for local experiments only.",
                settings.SESSION_STORAGE,
            )


def log_redis_configuration() -> None:
    """Log once, when a server process starts, which Redis it uses (commands stay quiet)."""
    from django.conf import settings

    from resilience.connection import redacted_url

    if settings.RESILIENCE_REDIS_ENABLED:
        logger.info(
            "Redis %s (from %s), pool %d, timeout %gs; sessions: %s",
            redacted_url(settings.RESILIENCE_REDIS_URL),
            settings.RESILIENCE_REDIS_URL_SOURCE,
            settings.RESILIENCE_REDIS_MAX_POOL_SIZE,
            settings.RESILIENCE_REDIS_TIMEOUT,
            settings.SESSION_EFFECTIVE_STORAGE,
        )
