"""Write tests/flags/vectors.json from the server's evaluator (run once; the file is then the contract).

python -m tests.flags.generate_vectors
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import django

VECTORS = Path(__file__).with_name("vectors.json")


def main() -> None:
    django.setup()
    from tenants.selectors import _evaluate

    rng = random.Random(20261202)
    keys = ["beta", "new_editor", "tools.max", "a", "x" * 64, "model-gpt_x.2"]
    subjects = [None, "user-7", "", "tenant:0b8e2f1c", "ünïcødé-用户", "a" * 200, "42", "user 7"]
    cases = []
    for _ in range(120):
        key = rng.choice(keys)
        percent = rng.choice([0, 1, 10, 30, 50, 75, 99, 100])
        enabled = rng.random() < 0.8
        reason = "rollout" if enabled and percent < 100 else rng.choice(["default", "plan", "admin_override"])
        tenant_subject = f"tenant-{rng.randrange(1000)}"
        rule = {"enabled": enabled, "reason": reason, "percent": percent if reason == "rollout" else 100, "version": 7}
        at_tenant = _evaluate(key, rule, tenant_subject)
        entry = {
            "enabled": at_tenant.enabled,
            "reason": at_tenant.reason,
            "version": 7,
            "rollout_percent": rule["percent"],
        }
        subject = rng.choice([*subjects, rng.choice(subjects) or "s", f"user-{rng.randrange(10**6)}"])
        expected = _evaluate(key, rule, tenant_subject if subject is None else subject)
        cases.append(
            {
                "flag": key,
                "rule": rule,
                "tenant_subject": tenant_subject,
                "entry": entry,
                "subject": subject,
                "expected": {"enabled": expected.enabled, "reason": expected.reason},
            }
        )
    VECTORS.write_text(json.dumps({"version": 1, "cases": cases}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
