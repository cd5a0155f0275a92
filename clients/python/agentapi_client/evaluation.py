"""Local flag evaluation from a bootstrap document: the same answers as the control plane's.

`tests/flags/vectors.json` in the control plane's repository holds the cases both
evaluators must pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Rollout buckets have 0.01 % resolution; percent p admits buckets [0, p * 100).
BUCKETS = 10_000


@dataclass(frozen=True)
class Evaluation:
    """A flag's value for one subject and the reason that decided it."""

    key: str
    enabled: bool
    reason: str
    version: int


def rollout_bucket(flag_key: str, subject: str) -> int:
    """Return the subject's stable bucket (0-9999) for a flag."""
    digest = hashlib.sha256(f"{flag_key}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def rollout_admits(flag_key: str, subject: str, percent: int) -> bool:
    """Return True if a `percent` rollout of the flag includes the subject; monotonic in percent."""
    return rollout_bucket(flag_key, subject) < percent * (BUCKETS // 100)


def evaluate(key: str, entry: dict, subject: str | None = None) -> Evaluation:
    """Evaluate a bootstrap flag entry for `subject` (None: the tenant itself, as the bootstrap did)."""
    enabled = bool(entry["enabled"])
    if subject is not None and entry["reason"] == "rollout":
        enabled = rollout_admits(key, subject, int(entry.get("rollout_percent", 100)))
    return Evaluation(key, enabled, entry["reason"], int(entry.get("version", 0)))
