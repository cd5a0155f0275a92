"""Settings for app processes the deployment tests start: the real settings plus a probe URL."""

from agentapi_admin.settings import *  # noqa: F403 - the point is to run the real configuration

ROOT_URLCONF = "tests.deploy.probe_urls"
