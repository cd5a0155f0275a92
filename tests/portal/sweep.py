"""Enumerate the portal's URL patterns from the resolver and snapshot everything a request could change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from resilience.connection import get_redis
from tests.plugins.redis_server import redis_contents

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class PortalRoute:
    name: str
    route: str
    kwargs: tuple[str, ...]


def portal_routes() -> list[PortalRoute]:
    """Return every named pattern in the `portal` namespace with the URL kwargs it needs."""
    found: list[PortalRoute] = []

    def walk(patterns, namespaces: tuple[str, ...], route: str, kwargs: tuple[str, ...]) -> None:
        for pattern in patterns:
            names = tuple(pattern.pattern.converters) if hasattr(pattern.pattern, "converters") else ()
            regex_names = tuple(pattern.pattern.regex.groupindex)
            here = kwargs + tuple(n for n in (names or regex_names) if n not in kwargs)
            if isinstance(pattern, URLResolver):
                ns = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                walk(pattern.url_patterns, ns, route + str(pattern.pattern), here)
            elif isinstance(pattern, URLPattern) and namespaces[:1] == ("portal",):
                found.append(PortalRoute(pattern.name, route + str(pattern.pattern), here))

    walk(get_resolver().url_patterns, (), "/", ())
    return found


def db_state() -> dict:
    """Return every row of every table of the project's apps and auth, as comparable values."""
    state = {}
    for label in ("audit", "tenants", "changes", "auth", "console", "portal"):
        for model in apps.get_app_config(label).get_models():
            if not model._meta.managed or model._meta.proxy:
                continue  # no table of its own (the console's ops pages are permission holders)
            state[model._meta.label] = sorted(map(repr, model.objects.order_by("pk").values()))
    return state


def redis_state() -> dict:
    """Return {key: digest of its type and value} for every key in the test Redis (SCAN, not KEYS)."""
    return {key: hashlib.sha256(repr(value).encode()).hexdigest() for key, value in redis_contents(get_redis()).items()}


def world_state() -> tuple[dict, dict]:
    return db_state(), redis_state()
