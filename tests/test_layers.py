"""Layers point one way: a module never imports a module of a higher layer (docs/architecture.md's code map).

Every import counts, at module level or inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the longest prefix listed; each may import its own
# layer and the layers below it. Keep this table and docs/architecture.md in step.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "core",
        [
            "agentapi_admin",
            # The Redis connection and its error classification: what every app needs.
            "resilience.connection",
            "resilience.exceptions",
            # The shape every owner's keys module declares its Redis key families in.
            "resilience.keyfamily",
        ],
    ),
    ("audit", ["audit"]),
    ("resilience", ["resilience"]),
    ("tenants", ["tenants"]),
    # Outbound change delivery: hears of writes through receivers, so nothing below imports it.
    ("webhooks", ["webhooks"]),
    # Change requests: schedule and approve writes of the tenants services, which never import it.
    ("changes", ["changes"]),
    ("console, portal and automation", ["console", "portal", "automation"]),
    # The project's wiring: settings name every app, the root URLconf mounts them all.
    ("wiring", ["agentapi_admin.settings", "agentapi_admin.urls", "agentapi_admin.wsgi", "agentapi_admin.asgi"]),
]
PACKAGES = sorted({prefix.split(".")[0] for _, prefixes in LAYERS for prefix in prefixes})


def layer_of(module: str) -> int | None:
    """Return the layer index of a dotted module name, or None for a module outside the project."""
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Return (line, imported module) for every import in the file, relative ones resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            # `from pkg import module` imports pkg.module when that is a module.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # migrations name other apps' models by label and run in dependency order
            here = layer_of(module_name(path))
            for line, target in imports_of(path):
                there = layer_of(target)
                if there is not None and there > here:
                    found.append(
                        f"{path.relative_to(ROOT)}:{line} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]})"
                    )
    return found


def test_no_module_imports_a_higher_layer():
    assert violations() == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    # A lazy import from the bottom to the top, inside a function, is caught.
    fake = tmp_path / "audit"
    fake.mkdir()
    (fake / "leak.py").write_text("def f():\n    from console.models import OPERATE_PERMISSION\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations() == [
        "audit/leak.py:2 (audit) imports console.models.OPERATE_PERMISSION (console, portal and automation)"
    ]


def test_every_project_package_is_on_the_map():
    on_disk = {p.parent.name for p in ROOT.glob("*/apps.py")} | {"agentapi_admin"}
    assert on_disk <= set(PACKAGES), on_disk - set(PACKAGES)
