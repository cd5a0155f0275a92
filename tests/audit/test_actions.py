"""Audit action names are constants next to the model, never strings spelled at a call site."""

import ast
from pathlib import Path

from audit.models import AuditAction

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = [
    "agentapi_admin",
    "audit",
    "automation",
    "changes",
    "console",
    "portal",
    "resilience",
    "tenants",
    "webhooks",
]


def _audit_record_calls():
    for package in PROJECT_PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(source.read_text(), filename=str(source))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "audit_record":
                    yield source.relative_to(ROOT), node


def test_every_action_is_entity_dot_verb_and_unique():
    values = [action.value for action in AuditAction]
    assert len(values) == len(set(values))
    for value in values:
        entity, _, verb = value.partition(".")
        assert entity and verb and value == value.lower(), value


def test_no_call_site_spells_an_action_string():
    calls = list(_audit_record_calls())
    assert len(calls) >= 20  # the walk found the services
    for where, call in calls:
        action = next(k.value for k in call.keywords if k.arg == "action")
        assert not isinstance(action, ast.Constant | ast.JoinedStr), (
            f"{where}:{call.lineno} spells {ast.unparse(action)}"
        )


def test_no_module_but_the_model_s_spells_an_action_value():
    values = {action.value for action in AuditAction}
    for package in PROJECT_PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            if source == ROOT / "audit" / "models.py" or "migrations" in source.parts:
                continue
            for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
                if isinstance(node, ast.Constant) and node.value in values:
                    raise AssertionError(f"{source.relative_to(ROOT)}:{node.lineno} spells {node.value!r}")
