"""The Python SDK's local flag evaluation: cost per call, beside the server's own evaluator in the same run.

    .venv/bin/python -m bench.sdk.run [--calls 200000] [--rounds 5]

No network: it times `ControlPlane.flag()` on a loaded bootstrap document (a plain flag and a
30 % rollout, for a fresh subject each call), `agentapi_client.evaluate` alone, and the server's
`tenants.selectors._evaluate` on the same rule, interleaved per round. Prints JSON.
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

ROLLOUT = {"enabled": False, "reason": "rollout", "version": 7, "rollout_percent": 30}
PLAIN = {"enabled": True, "reason": "admin_override", "version": 7, "rollout_percent": 100}


def _server_evaluate():
    import django

    django.setup()
    from tenants.selectors import _evaluate

    rule = {"enabled": True, "reason": "rollout", "percent": 30, "version": 7}
    return lambda subject: _evaluate("beta", rule, subject)


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
    plane._document = {"flags": {"beta": ROLLOUT, "plain": PLAIN}}
    cases = {
        "sdk ControlPlane.flag(rollout, subject)": lambda s: plane.flag("beta", s),
        "sdk ControlPlane.flag(plain, subject)": lambda s: plane.flag("plain", s),
        "sdk evaluate(rollout entry, subject)": lambda s: evaluate("beta", ROLLOUT, s),
        "server _evaluate(rollout rule, subject)": server,
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
