"""Bench-only settings: the production settings plus a URLconf adding the bare reference view."""

from agentapi_admin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.ops.urls"
