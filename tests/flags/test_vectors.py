"""The shared evaluation vectors: the server's evaluator and the Python SDK's give the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agentapi_client.evaluation import evaluate

from tenants.selectors import _evaluate


def _entry(rule: dict) -> dict:
    """The compiled entry (tenants.flagrules) of a version-1 vector's rule: on/off, or a rollout."""
    if rule["enabled"] and rule["percent"] < 100:
        steps = [{"reason": "rollout", "percent": rule["percent"], "miss": "off", "serve": {"enabled": True}}]
    else:
        steps = [{"reason": rule["reason"], "serve": {"enabled": rule["enabled"]}}]
    return {"entry": {"kind": "boolean", "version": rule["version"], "steps": steps}}


CASES = json.loads(Path(__file__).with_name("vectors.json").read_text())["cases"]


def test_the_vectors_cover_rollouts_subjects_and_every_outcome():
    assert len(CASES) >= 100
    assert {case["expected"]["enabled"] for case in CASES if case["entry"]["reason"] == "rollout"} == {True, False}
    assert any(case["subject"] is None for case in CASES) and any(case["subject"] == "" for case in CASES)
    assert any(not case["subject"].isascii() for case in CASES if case["subject"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case['flag'][:12]}-{case['subject']!s:.12}")
def test_server_evaluator(case):
    subject = case["tenant_subject"] if case["subject"] is None else case["subject"]
    result = _evaluate(case["flag"], _entry(case["rule"]), subject)
    assert {"enabled": result.enabled, "reason": result.reason} == case["expected"]
    # The bootstrap entry is the rule evaluated for the tenant itself.
    at_tenant = _evaluate(case["flag"], _entry(case["rule"]), case["tenant_subject"])
    assert (at_tenant.enabled, at_tenant.reason) == (case["entry"]["enabled"], case["entry"]["reason"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case['flag'][:12]}-{case['subject']!s:.12}")
def test_sdk_evaluator(case):
    result = evaluate(case["flag"], case["entry"], case["subject"])
    assert {"enabled": result.enabled, "reason": result.reason} == case["expected"]
