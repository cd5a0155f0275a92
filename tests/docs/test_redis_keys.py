"""One key contract: keys are built in key modules only, every Lua script is registered and builds none,
and docs/redis-keys.md is what those modules declare."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from console import rediskeys
from resilience import lua

BASE_DIR = Path(__file__).resolve().parents[2]
DOC = BASE_DIR / "docs" / "redis-keys.md"
PACKAGES = ("agentapi_admin", "audit", "console", "resilience", "tenants", "portal")
# Modules allowed to spell key names: the key modules, and settings, which gives django-redis its KEY_PREFIX.
KEY_BUILDERS = {f"{name.replace('.', '/')}.py" for name in rediskeys.KEY_MODULES} | {"agentapi_admin/settings.py"}
# Modules that register scripts (importing them registers every script the app sends).
SCRIPT_OWNERS = (
    "resilience.ratelimit.limiter",
    "resilience.breakers.events",
    "resilience.sessions.backends.redis",
    "tenants.cache",
    "tenants.api.gateway",
)
# Redis commands a script may send without a key.
KEYLESS = {"TIME"}
# Library functions whose first argument is a key.
LIBRARY_KEY_FUNCTIONS = ("rate_limit", "rate_limit_index", "rate_limit_peek")


def _sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((BASE_DIR / package).rglob("*.py"))]


def _lua_files() -> set[Path]:
    return {path for package in PACKAGES for path in (BASE_DIR / package).rglob("*.lua")}


def test_the_key_document_is_generated_from_the_key_modules():
    rendered = rediskeys.render()
    if os.environ.get("UPDATE_REDIS_KEYS_DOC") == "1":
        DOC.write_text(rendered)
    assert DOC.read_text() == rendered, (
        "docs/redis-keys.md differs from the FAMILIES of the key modules: "
        "run UPDATE_REDIS_KEYS_DOC=1 pytest tests/docs/test_redis_keys.py"
    )


def test_every_key_module_declares_its_families():
    for module, family in rediskeys.families():
        assert family.pattern and family.type and family.ttl and family.owner and family.purpose, (module, family)
        assert not family.pattern.startswith("agentapi:"), f"{module}: patterns leave out the prefix"


def _key_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "resilience.connection":
            found += [f"imports key() at line {node.lineno}" for alias in node.names if alias.name == "key"]
        elif isinstance(node, ast.Attribute | ast.Name) and "RESILIENCE_KEY_PREFIX" in {
            getattr(node, "attr", None),
            getattr(node, "id", None),
        }:
            found.append(f"reads RESILIENCE_KEY_PREFIX at line {node.lineno}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            # A key name has no spaces; prose that mentions one (help texts, docstrings) does.
            and "agentapi:" in node.value
            and not re.search(r"\s", node.value)
        ):
            found.append(f"spells {node.value!r} at line {node.lineno}")
    return found


def test_no_key_is_built_outside_the_key_modules():
    offenders = {}
    for path in _sources():
        relative = str(path.relative_to(BASE_DIR))
        if relative in KEY_BUILDERS:
            continue
        found = _key_literals(path)
        if found:
            offenders[relative] = found
    assert not offenders, f"build these keys in a key module ({', '.join(sorted(KEY_BUILDERS))}): {offenders}"


def test_the_key_check_sees_what_it_forbids(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from django.conf import settings\n"
        "from resilience.connection import get_redis, key\n"
        "NAME = 'agentapi:rl:idx:all'\n"
        "PREFIX = f'{settings.RESILIENCE_KEY_PREFIX}:flags:'\n"
        "HELP = 'Deletes agentapi:flags:* documents'\n"
    )
    assert sorted(_key_literals(sample)) == [
        "imports key() at line 2",
        "reads RESILIENCE_KEY_PREFIX at line 4",
        "spells 'agentapi:rl:idx:all' at line 3",
    ]


# The loader sends scripts; the Redis client classes relay them (the cluster client's pipeline
# runs a queued script on its own node and re-sends its source after a failover).
SCRIPT_SENDERS = {BASE_DIR / "resilience" / "lua.py", BASE_DIR / "resilience" / "breakers" / "redis_client.py"}


def test_no_module_but_the_loader_sends_scripts():
    sending = re.compile(r"\.(eval|evalsha|register_script|script_load)\(")
    offenders = [
        str(path.relative_to(BASE_DIR))
        for path in _sources()
        if path not in SCRIPT_SENDERS and sending.search(path.read_text())
    ]
    assert not offenders, f"send scripts through resilience.lua (Script.run / run_many): {offenders}"


def _registered() -> dict[str, lua.Script]:
    for module in SCRIPT_OWNERS:
        __import__(module)
    return dict(lua.SCRIPTS)


def test_every_lua_file_is_registered_with_the_loader():
    scripts = _registered()
    used = {script.path for script in scripts.values()} | {lib for s in scripts.values() for lib in s.include}
    assert _lua_files() == used, f"not registered: {sorted(map(str, _lua_files() - used))}"


def _function_params(source: str) -> set[str]:
    params = set()
    for match in re.finditer(r"local function \w+\(([^)]*)\)", source):
        params.update(p.strip() for p in match.group(1).split(",") if p.strip())
    return params


def _key_arguments(source: str) -> list[tuple[str, str]]:
    """Return (command, first argument) of every redis.call/pcall, and (function, first argument) of library calls."""
    calls = re.findall(r"redis\.p?call\(\s*'(\w+)'\s*(?:,\s*([^,)]+))?", source)
    library = "|".join(LIBRARY_KEY_FUNCTIONS)
    calls += re.findall(rf"(?<![\w.])({library})\(\s*([^,)]+)", source)
    return [(name, (arg or "").strip()) for name, arg in calls]


@pytest.mark.parametrize("path", sorted(_lua_files()), ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_no_script_builds_a_key(path):
    source = re.sub(r"--.*", "", path.read_text())  # comments may mention calls
    params = _function_params(source)
    bad = []
    for name, arg in _key_arguments(source):
        if name.upper() in KEYLESS:
            continue
        if name in LIBRARY_KEY_FUNCTIONS and f"function {name}(" in source and arg in params:
            continue  # the definition's own recursion or a wrapper passing its parameter on
        if re.fullmatch(r"KEYS\[\w+\]", arg) or (arg in params and name.isupper()):
            continue
        bad.append(f"{name}({arg}, ...)")
    assert not bad, f"{path.name}: every key must be KEYS[n] (or a library parameter given KEYS[n]): {bad}"
    assert "KEYS[" in source or path.name == "rate_limit.lua"


def test_the_script_check_sees_a_built_key():
    built = "local doc = prefix .. ':flags:' .. ARGV[1]\nredis.call('HGET', doc, 'body')\nrate_limit(ARGV[2], 1)"
    assert _key_arguments(built) == [("HGET", "doc"), ("rate_limit", "ARGV[2]")]
