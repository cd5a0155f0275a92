"""ASGI entry point (uvicorn agentapi_admin.asgi:application, the change stream's server)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
application = get_asgi_application()

from resilience.apps import log_redis_configuration  # noqa: E402 - needs the settings loaded above

# Once per serving process, as in wsgi.py; manage.py calls stay quiet.
log_redis_configuration()
