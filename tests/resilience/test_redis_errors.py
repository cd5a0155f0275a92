"""One classification of "Redis is unavailable": REDIS_UNAVAILABLE_ERRORS, caught as is everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis

from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS
from resilience.ratelimit import RateLimiter, state_key

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ["agentapi_admin", "audit", "console", "portal", "resilience", "tenants"]
HOME = ROOT / "resilience" / "exceptions.py"
# Catching one precise reply to handle it (a script not loaded yet, a lock timing out) is not a classification.
PRECISE = {"NoScriptError", "ResponseError", "TimeoutError", "RedisDisabled", "LockError", "LockNotOwnedError"}


# Starts and probes local redis-server processes for `make run` and the test fixtures: a node
# that answers nothing (any error) is simply "down" there, not an outage of the app's Redis.
PROCESS_TOOLING = ROOT / "agentapi_admin" / "redis_process.py"


def _modules():
    for package in PROJECT_PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            if source not in (HOME, PROCESS_TOOLING) and "migrations" not in source.parts:
                yield source, ast.parse(source.read_text(), filename=str(source))


def _names(node) -> list[str]:
    parts = node.elts if isinstance(node, ast.Tuple) else [node]
    return [ast.unparse(part) for part in parts]


def test_no_module_spells_its_own_list_of_redis_errors():
    for source, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ExceptHandler) or node.type is None:
                continue
            names = _names(node.type)
            redis_names = [
                n for n in names if n.startswith("redis.") or n in {"RedisDisabled", "ConnectionInterrupted"}
            ]
            where = f"{source.relative_to(ROOT)}:{node.lineno}"
            assert not any(n.rsplit(".", 1)[-1] == "RedisError" for n in names), f"{where} catches every RedisError"
            if len(names) > 1:
                assert not redis_names, f"{where} lists {names}: catch REDIS_UNAVAILABLE_ERRORS"
            else:
                assert not redis_names or names[0].rsplit(".", 1)[-1] in PRECISE, f"{where} catches {names[0]}"


def test_no_module_renames_the_tuple():
    for source, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and ast.unparse(node.value) == "REDIS_UNAVAILABLE_ERRORS":
                raise AssertionError(f"{source.relative_to(ROOT)}:{node.lineno} renames REDIS_UNAVAILABLE_ERRORS")


def test_a_bug_in_a_command_is_not_taken_for_an_outage(redis_client, settings):
    # A key of the wrong type is a bug to see, not a Redis outage to fail open on.
    settings.RESILIENCE_RATE_LIMIT_FAIL_MODE = "open"
    redis_client.set(state_key("user", "acme", "u1"), "not a hash")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        RateLimiter().hit("user", "acme", "u1", limit=60, burst=10)
    assert not issubclass(redis.exceptions.ResponseError, REDIS_UNAVAILABLE_ERRORS)
