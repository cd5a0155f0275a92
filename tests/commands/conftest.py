"""Helpers for the operations-command tests: run a command, snapshot Redis and the database."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from resilience.breakers.process import redis_breaker
from tests.plugins.redis_server import redis_contents


@pytest.fixture(autouse=True)
def _closed_redis_breaker():
    redis_breaker.reset()
    yield
    redis_breaker.reset()


def run_json(name: str, *args: str, **options) -> dict:
    """Run a command with --json and return its summary."""
    out = StringIO()
    call_command(name, *args, "--json", stdout=out, **options)
    return json.loads(out.getvalue())


def redis_state(client) -> dict:
    """Return every key with its type and value dump (for before/after comparisons)."""
    return redis_contents(client)


def db_state() -> dict:
    """Return every row of the project's models (for before/after comparisons)."""
    state = {}
    tables = set(connection.introspection.table_names())
    for label in ("audit", "tenants", "sessions", "auth", "console"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.db_table not in tables:
                continue
            state[model._meta.label] = sorted(map(repr, model.objects.values_list()))
    return state
