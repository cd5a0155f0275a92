"""Bench-only settings: the production settings plus a URLconf holding the bare reference view."""

from agentapi_admin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bootstrap.urls"
