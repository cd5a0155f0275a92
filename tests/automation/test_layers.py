"""Automation sits on top: it calls the tenants, audit and resilience services; no lower app imports it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOWER = ["audit", "tenants", "resilience", "console", "portal", "agentapi_admin"]
# The URLconf wires every app's URLs, so it is the one module allowed to name the admin API.
ALLOWED = {Path("agentapi_admin/urls.py")}


def _imports(source: Path):
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_lower_app_imports_automation():
    offenders = [
        f"{source.relative_to(ROOT)} imports {name}"
        for package in LOWER
        for source in sorted((ROOT / package).rglob("*.py"))
        if source.relative_to(ROOT) not in ALLOWED
        for name in _imports(source)
        if name == "automation" or name.startswith("automation.")
    ]
    assert offenders == []
    assert any(name.startswith("automation.") for name in _imports(ROOT / "agentapi_admin" / "urls.py"))
