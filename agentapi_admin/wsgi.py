"""WSGI entry point (gunicorn agentapi_admin.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
application = get_wsgi_application()

from resilience.apps import log_redis_configuration  # noqa: E402 - needs the settings loaded above

# Once per serving process (runserver, each gunicorn worker), not on every manage.py call.
log_redis_configuration()
