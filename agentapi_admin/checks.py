"""Deploy checks for the middleware stack that Django's own cannot see through subclasses.

Django's security.W002/W003 look for the exact dotted paths of XFrameOptionsMiddleware and
CsrfViewMiddleware; the project installs browser-only subclasses of both (the service API
skips them), so settings silence those two and these checks take their place.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

REQUIRED = (
    (XFrameOptionsMiddleware, "agentapi_admin.W002", "pages are served without an X-Frame-Options header"),
    (CsrfViewMiddleware, "agentapi_admin.W003", "pages have no cross-site request forgery protection"),
)


def _installed(base: type) -> bool:
    for path in settings.MIDDLEWARE:
        try:
            if issubclass(import_string(path), base):
                return True
        except ImportError:
            continue  # Django reports an unimportable middleware itself
    return False


@register(Tags.security, deploy=True)
def check_browser_security_middleware(app_configs, **kwargs) -> list[Warning]:
    """Warn when no middleware (or subclass) provides framing or CSRF protection for pages."""
    return [
        Warning(f"No {base.__name__} (or subclass) in MIDDLEWARE: {consequence}.", id=check_id)
        for base, check_id, consequence in REQUIRED
        if not _installed(base)
    ]
