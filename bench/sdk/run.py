"""The Python SDK's local flag evaluation: cost per call, beside the server's own evaluator in the same run.

    .venv/bin/python -m bench.sdk.run [--calls 200000] [--rounds 5]

No network: it times `ControlPlane.flag()` on a loaded bootstrap document (a plain flag, a
30 % rollout, a typed flag with a context rule and a split; a fresh subject each call),
`agentapi_client.evaluate` alone, and the server's evaluator (`tenants.flagrules.evaluate`)
on the same compiled entries, interleaved per round. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from agentapi_client import ControlPlane, evaluate

ROLLOUT_EVAL = {
    "kind": "boolean",
    "version": 7,
    "steps": [{"reason": "rollout", "percent": 30, "miss": "off", "serve": {"enabled": True}}],
}
PLAIN_EVAL = {"kind": "boolean", "version": 7, "steps": [{"reason": "admin_override", "serve": {"enabled": True}}]}
TYPED_EVAL = {
    "kind": "string",
    "version": 7,
    "default_value": "#fff",
    "variants": [
        {"key": "red", "value": "#f00", "weight": 50},
        {"key": "green", "value": "#0f0", "weight": 30},
        {"key": "blue", "value": "#00f", "weight": 20},
    ],
    "steps": [
        {
            "reason": "rule",
            "rule": 1,
            "match": [
                {"attribute": "context.platform", "op": "in", "values": ["ios"]},
                {"attribute": "context.app_version", "op": "semver_gte", "values": ["2.0.0"]},
            ],
            "serve": {"enabled": True, "variant": "green"},
        },
        {"reason": "default", "serve": {"enabled": True}},
    ],
}
CONTEXT = {"platform": "android", "app_version": "2.1.0"}


def _entry(answer: dict, compiled: dict) -> dict:
    return {**answer, "version": 7, "rollout_percent": 100, "eval": compiled}


ROLLOUT = _entry({"enabled": False, "reason": "rollout"}, ROLLOUT_EVAL)
PLAIN = _entry({"enabled": True, "reason": "admin_override"}, PLAIN_EVAL)
TYPED = _entry({"enabled": True, "reason": "split", "value": "#f00", "variant": "red"}, TYPED_EVAL)


def _server_evaluate():
    import django

    django.setup()
    from tenants.flagrules import evaluate as server_evaluate

    return lambda subject: server_evaluate("beta", ROLLOUT_EVAL, subject)


def per_call_ns(function, subjects) -> float:
    started = time.perf_counter_ns()
    for subject in subjects:
        function(subject)
    return (time.perf_counter_ns() - started) / len(subjects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("READ_ENV_FILE", "false")
    server = _server_evaluate()

    plane = ControlPlane("http://127.0.0.1:9", "aak_bench", poll_interval=0)
    plane._document = {"tenant": {"id": "t"}, "flags": {"beta": ROLLOUT, "plain": PLAIN, "theme": TYPED}}
    cases = {
        "sdk ControlPlane.flag(rollout, subject)": lambda s: plane.flag("beta", s),
        "sdk ControlPlane.flag(plain, subject)": lambda s: plane.flag("plain", s),
        "sdk ControlPlane.get_string(typed, subject, context)": lambda s: plane.get_string("theme", "", s, CONTEXT),
        "sdk evaluate(rollout entry, subject)": lambda s: evaluate("beta", ROLLOUT, s),
        "server flagrules.evaluate(rollout entry, subject)": server,
    }
    subjects = [f"user-{n}" for n in range(options.calls)]
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(options.rounds):
        for name, function in cases.items():
            results[name].append(per_call_ns(function, subjects))
    report = {
        "python": platform.python_version(),
        "calls_per_round": options.calls,
        "rounds": options.rounds,
        "median_ns_per_call": {name: round(statistics.median(values)) for name, values in results.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
