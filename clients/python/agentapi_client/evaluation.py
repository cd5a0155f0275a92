"""Local flag evaluation from a bootstrap document: the same answers as the control plane's.

Each bootstrap flag carries `eval`, the flag compiled for the tenant: `{kind, version,
default_value?, variants?, steps}`. `evaluate` walks the steps for a subject and an
evaluation context exactly as the control plane does for `POST /api/v1/evaluate`;
`tests/flags/vectors.json` in the control plane's repository holds the cases both
evaluators must pass. This module mirrors the control plane's evaluator and imports
nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

#: Rollout and variant buckets have 0.01 % resolution; percent p admits buckets [0, p * 100).
BUCKETS = 10_000
#: Longer strings match no condition; regex conditions hold for strings of at most MAX_REGEX_INPUT.
MAX_CONTEXT_STRING = 1024
MAX_REGEX_INPUT = 256

_STRING_OPS = ("in", "not_in", "contains", "starts_with", "ends_with", "regex")
_NUMBER_OPS = ("lt", "lte", "gt", "gte")
_SEMVER_OPS = ("semver_eq", "semver_lt", "semver_lte", "semver_gt", "semver_gte")
_DATE_OPS = ("before", "after")
_CONTEXT_PREFIX = "context."
_UTC = timezone.utc  # noqa: UP017 - the SDK supports Python 3.10, which has no datetime.UTC

_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_MOMENT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:[Zz]|([+-])(\d{2}):?(\d{2}))?)?$"
)


@dataclass(frozen=True)
class Evaluation:
    """A flag's answer for one subject and context, and the reason that decided it."""

    key: str
    enabled: bool
    reason: str
    version: int
    #: True/False for a boolean flag; the string, number or JSON value of a typed flag (None while off).
    value: Any = None
    variant: str | None = None
    #: The 1-based position of the flag-level rule that decided (reason "rule"), else None.
    rule: int | None = None


# -- buckets --------------------------------------------------------------------------------------


def rollout_bucket(flag_key: str, subject: str) -> int:
    """Return the subject's stable rollout bucket (0-9999) for a flag."""
    digest = hashlib.sha256(f"{flag_key}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def rollout_admits(flag_key: str, subject: str, percent: int) -> bool:
    """Return True if a `percent` rollout of the flag includes the subject; monotonic in percent."""
    return rollout_bucket(flag_key, subject) < percent * (BUCKETS // 100)


def variant_bucket(flag_key: str, subject: str) -> int:
    """Return the subject's variant bucket (0-9999): independent of its rollout bucket."""
    digest = hashlib.sha256(f"{flag_key}\x00variant\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def split_variant(flag_key: str, subject: str, variants: list[dict]) -> dict | None:
    """Return the variant a weighted split gives the subject: each owns a contiguous bucket range, in order."""
    bucket = variant_bucket(flag_key, subject)
    upper = 0
    for variant in variants:
        upper += int(variant.get("weight", 0)) * (BUCKETS // 100)
        if bucket < upper:
            return variant
    return None


# -- conditions -----------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _NUMBER.match(value):
            return None
        value = float(value)
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def parse_semver(value: Any) -> tuple | None:
    """Return a sortable key for a semantic version ("1.2.3-rc.1"), or None if it is not one."""
    match = _SEMVER.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def parse_moment(value: Any) -> datetime | None:
    """Return an aware UTC datetime from an RFC 3339 date or date-time, or from epoch seconds (a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, _UTC)
        except (OverflowError, OSError, ValueError):
            return None
    match = _MOMENT.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_UTC,
        )
    except ValueError:
        return None
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            return None
        moment -= offset if sign == "+" else -offset
    return moment


def _test(op: str, actual: Any, values: list) -> bool:
    if op in _STRING_OPS:
        text = _scalar(actual)
        if len(text) > MAX_CONTEXT_STRING:
            return False
        if op == "in":
            return text in {_scalar(v) for v in values}
        if op == "contains":
            return any(_scalar(v) in text for v in values)
        if op == "starts_with":
            return any(text.startswith(_scalar(v)) for v in values)
        if op == "ends_with":
            return any(text.endswith(_scalar(v)) for v in values)
        if op == "regex":
            return len(text) <= MAX_REGEX_INPUT and any(re.search(v, text) is not None for v in values)
    if op in _NUMBER_OPS:
        left, right = _number(actual), _number(values[0])
        if left is None or right is None:
            return False
        return {"lt": left < right, "lte": left <= right, "gt": left > right, "gte": left >= right}[op]
    if op in _SEMVER_OPS:
        mine, theirs = parse_semver(actual), parse_semver(values[0])
        if mine is None or theirs is None:
            return False
        return {
            "semver_eq": mine == theirs,
            "semver_lt": mine < theirs,
            "semver_lte": mine <= theirs,
            "semver_gt": mine > theirs,
            "semver_gte": mine >= theirs,
        }[op]
    if op in _DATE_OPS:
        when, bound = parse_moment(actual), parse_moment(values[0])
        if when is None or bound is None:
            return False
        return when < bound if op == "before" else when > bound
    return False


def condition_holds(condition: dict, actual: Any, present: bool) -> bool:
    """Return True if the condition holds; a missing attribute satisfies no operator, not_in included."""
    if not present or actual is None:
        return False
    op, values = condition["op"], condition["values"]
    if op == "not_in":
        items = actual if isinstance(actual, list) else [actual]
        return not any(_test("in", item, values) for item in items)
    if isinstance(actual, list):
        return any(_test(op, item, values) for item in actual)
    return _test(op, actual, values)


def _context_value(attribute: str, subject: str, context: dict) -> tuple[Any, bool]:
    if attribute == "subject":
        return subject, True
    name = attribute[len(_CONTEXT_PREFIX) :]
    return context.get(name), name in context


# -- evaluation -----------------------------------------------------------------------------------


def _off(key: str, entry: dict, reason: str, rule: int | None) -> Evaluation:
    value = False if entry.get("kind", "boolean") == "boolean" else None
    return Evaluation(key, False, reason, int(entry.get("version", 0)), value, None, rule)


def _serve(key: str, entry: dict, step: dict, subject: str) -> Evaluation:
    serve = step.get("serve") or {}
    reason, rule = step["reason"], step.get("rule")
    version = int(entry.get("version", 0))
    if not serve.get("enabled", False):
        return _off(key, entry, reason, rule)
    if entry.get("kind", "boolean") == "boolean":
        return Evaluation(key, True, reason, version, True, None, rule)
    variants = entry.get("variants") or []
    if "variant" in serve:
        chosen = next((v for v in variants if v["key"] == serve["variant"]), None)
        if chosen is not None:
            return Evaluation(key, True, reason, version, chosen["value"], chosen["key"], rule)
    if "value" in serve:
        return Evaluation(key, True, reason, version, serve["value"], None, rule)
    if any(int(v.get("weight", 0)) for v in variants):
        chosen = split_variant(key, subject, variants)
        if chosen is not None:
            split_reason = "split" if reason == "default" else reason
            return Evaluation(key, True, split_reason, version, chosen["value"], chosen["key"], rule)
    return Evaluation(key, True, reason, version, entry.get("default_value"), None, rule)


def evaluate_entry(key: str, entry: dict, subject: str, context: dict | None = None) -> Evaluation:
    """Evaluate a compiled entry (a bootstrap flag's `eval`) for a subject and an evaluation context."""
    context = context or {}
    for step in entry.get("steps", ()):
        conditions = step.get("match") or ()
        if not all(condition_holds(c, *_context_value(c["attribute"], subject, context)) for c in conditions):
            continue
        percent = int(step.get("percent", 100))
        if percent < 100 and not rollout_admits(key, subject, percent):
            if step.get("miss") == "off":
                return _off(key, entry, step["reason"], step.get("rule"))
            continue
        return _serve(key, entry, step, subject)
    return _off(key, entry, "default", None)


def evaluate(key: str, entry: dict, subject: str | None = None, context: dict | None = None) -> Evaluation:
    """Evaluate a bootstrap flag entry (or its compiled `eval`) for `subject` and `context`.

    With no subject and no context, a bootstrap entry's own answer (the tenant's) is returned.
    Entries from a control plane without `eval` carry only an on/off answer and a rollout
    percentage; those are evaluated as before.
    """
    if "steps" in entry:
        if subject is None:
            raise ValueError("evaluating a compiled entry needs a subject")
        return evaluate_entry(key, entry, subject, context)
    if subject is None and not context:
        return Evaluation(
            key,
            bool(entry["enabled"]),
            entry["reason"],
            int(entry.get("version", 0)),
            entry.get("value", bool(entry["enabled"])),
            entry.get("variant"),
            entry.get("rule"),
        )
    if "eval" in entry:
        if subject is None:
            raise ValueError("evaluating with a context needs a subject (the tenant id by default)")
        return evaluate_entry(key, entry["eval"], subject, context)
    enabled = bool(entry["enabled"])
    if subject is not None and entry["reason"] == "rollout":
        enabled = rollout_admits(key, subject, int(entry.get("rollout_percent", 100)))
    return Evaluation(key, enabled, entry["reason"], int(entry.get("version", 0)), enabled)
