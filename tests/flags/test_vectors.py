"""The shared evaluation vectors: the server's evaluator and the Python SDK's give the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agentapi_client.evaluation import evaluate as sdk_evaluate

from tenants.flagrules import OPS, REASONS
from tenants.selectors import flag_evaluate_from_rules

DOCUMENT = json.loads(Path(__file__).with_name("vectors.json").read_text())
CASES = DOCUMENT["cases"]


def _ids(case: dict) -> str:
    return f"{case['flag']}-{case['subject'][:10]}-{len(case['context'])}"


def test_the_vectors_cover_every_reason_operator_kind_and_bucket():
    assert DOCUMENT["version"] == 2 and len(CASES) >= 500
    assert {case["expected"]["reason"] for case in CASES} == set(REASONS)
    assert {case["entry"]["kind"] for case in CASES} == {"boolean", "string", "number", "json"}
    ops = {}
    for case in CASES:
        for step in case["entry"]["steps"]:
            for condition in step.get("match", ()):
                ops.setdefault(condition["op"], set()).add(case["expected"]["enabled"])
    assert set(ops) == set(OPS)
    assert all(outcomes == {True, False} for op, outcomes in ops.items() if op != "not_in"), ops
    assert {case["expected"]["enabled"] for case in CASES if case["expected"]["reason"] == "rollout"} == {True, False}
    assert any(case["expected"]["rule"] for case in CASES)
    assert any(case["expected"]["variant"] for case in CASES if case["expected"]["reason"] == "split")
    assert any(case["flag"] == "tenant-percent" for case in CASES)
    assert any(case["context"] == {} for case in CASES) and any(case["subject"] == "" for case in CASES)
    assert any(not case["subject"].isascii() for case in CASES)


def _answer(result) -> dict:
    return {
        "enabled": result.enabled,
        "value": result.value,
        "variant": result.variant,
        "reason": result.reason,
        "rule": result.rule,
    }


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_server_evaluator(case):
    rules = {case["flag"]: {"entry": case["entry"]}}
    result = flag_evaluate_from_rules(rules, case["flag"], case["subject"], case["context"])
    assert _answer(result) == case["expected"]
    assert result.version == case["entry"]["version"]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_sdk_evaluator(case):
    result = sdk_evaluate(case["flag"], case["entry"], case["subject"], case["context"])
    assert _answer(result) == case["expected"]
    assert result.version == case["entry"]["version"]
