"""Flag evaluation: compiling a flag's layers for one tenant, evaluating them, and validating their inputs.

A flag's answer is decided in two stages (docs/flags.md has the model and examples):

1. `compile_entry` runs when a tenant's document is built. Every layer that depends only on
   the tenant is resolved there: archived, the owner's toggle, the platform's override, the
   flag-level rules' tenant conditions and tenant-bucketed percentages, the plan, the default.
   What is left is an *entry*: the flag's kind, values, variants and an ordered list of steps.
2. `evaluate` walks an entry's steps for one subject and evaluation context. The first step
   whose conditions hold and whose percentage admits the subject decides the answer.

Entries are plain JSON: they are cached in Redis, sent in the bootstrap, and evaluated the
same way by the service API and by clients (`tests/flags/vectors.json` holds the shared cases).

This module imports nothing from Django: it is the evaluator's one definition.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("boolean", "string", "number", "json")
#: Every reason an answer can carry, in evaluation order (docs/flags.md: "Evaluation order").
REASONS = ("archived", "owner_toggle", "admin_override", "rollout", "rule", "plan", "split", "default")

#: Rollout and variant buckets have 0.01 % resolution; percent p admits buckets [0, p * 100).
BUCKETS = 10_000

STRING_OPS = ("in", "not_in", "contains", "starts_with", "ends_with", "regex")
NUMBER_OPS = ("lt", "lte", "gt", "gte")
SEMVER_OPS = ("semver_eq", "semver_lt", "semver_lte", "semver_gt", "semver_gte")
DATE_OPS = ("before", "after")
OPS = STRING_OPS + NUMBER_OPS + SEMVER_OPS + DATE_OPS

#: Attributes a condition may test. tenant.* are resolved when the document is built; subject and
#: context.<name> at evaluation time, from the caller.
TENANT_ATTRIBUTES = ("tenant.id", "tenant.slug", "tenant.plan", "tenant.status", "tenant.labels")
TENANT_SETTINGS_PREFIX = "tenant.settings."
CONTEXT_PREFIX = "context."
CONTEXT_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
VARIANT_KEY_PATTERN = r"^[a-z0-9_.-]{1,64}$"

MAX_VALUES = 100
MAX_REGEX_LENGTH = 128
#: Longer context strings are not matched by any condition.
MAX_CONTEXT_STRING = 1024
#: A regex condition never holds for a longer string: with the pattern rules below, this bounds
#: the work of one regex test to milliseconds whatever the pattern and the input.
MAX_REGEX_INPUT = 256
#: Quantifiers without an upper bound (*, +, {n,}) a pattern may hold.
MAX_UNBOUNDED_QUANTIFIERS = 2
MAX_CONDITIONS = 20
MAX_RULES = 50
MAX_VARIANTS = 20
MAX_VALUE_BYTES = 16_384

# semver.org's grammar (pre-release numbers without leading zeros), with an optional leading "v".
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# JSON's number grammar: what a numeric string must look like to compare as a number (no "1_000",
# " 1", "nan" or "inf", which some languages' parsers accept and others refuse).
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
# ISO 8601 as RFC 3339 writes it: a date, or a date and time with optional seconds, fraction and offset.
_MOMENT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:[Zz]|([+-])(\d{2}):?(\d{2}))?)?$"
)


class RuleError(ValueError):
    """An invalid flag value, variant, condition or rule; `field` names where (e.g. "rules[2].percent")."""

    def __init__(self, message: str, *, field: str):
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Evaluation:
    """A flag's answer for one subject and context, and the reason that decided it."""

    enabled: bool
    value: Any
    variant: str | None
    reason: str
    version: int
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
    """Return the variant a weighted split gives the subject (weights are percentages summing to 100).

    Each variant owns a contiguous range of buckets in list order, so appending a variant
    (taking weight from the last) moves no subject between the earlier ones.
    """
    bucket = variant_bucket(flag_key, subject)
    upper = 0
    for variant in variants:
        upper += int(variant.get("weight", 0)) * (BUCKETS // 100)
        if bucket < upper:
            return variant
    return None


# -- conditions -----------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    """Return a condition operand as text: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def _number(value: Any) -> float | None:
    """Return a finite number from a JSON number or a string in JSON's number grammar, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _NUMBER.match(value):
            return None
        value = float(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a double's range
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
        # A release sorts after every pre-release of the same version.
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def parse_moment(value: Any) -> datetime | None:
    """Return an aware UTC datetime from an RFC 3339 date or date-time, or from epoch seconds (a number).

    A date is its midnight UTC; a date-time without an offset is UTC. One grammar, not the host
    language's parser, so every evaluator reads the same strings the same way.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
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
            tzinfo=UTC,
        )
    except ValueError:  # e.g. 2026-02-30 or 25:00
        return None
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            return None
        moment -= offset if sign == "+" else -offset
    return moment


def _test(op: str, actual: Any, values: list) -> bool:
    """Apply one operator to one non-list attribute value."""
    if op in STRING_OPS:
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
    if op in NUMBER_OPS:
        left, right = _number(actual), _number(values[0])
        if left is None or right is None:
            return False
        return {"lt": left < right, "lte": left <= right, "gt": left > right, "gte": left >= right}[op]
    if op in SEMVER_OPS:
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
    if op in DATE_OPS:
        when, bound = parse_moment(actual), parse_moment(values[0])
        if when is None or bound is None:
            return False
        return when < bound if op == "before" else when > bound
    return False


def condition_holds(condition: dict, actual: Any, present: bool) -> bool:
    """Return True if the condition holds for the attribute's value.

    A missing attribute satisfies no operator, `not_in` included. A list value (tenant
    labels, a context list) satisfies `not_in` when none of its items is in the values,
    and any other operator when one of its items does.
    """
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
    name = attribute[len(CONTEXT_PREFIX) :]
    return context.get(name), name in context


def tenant_value(attribute: str, tenant: dict) -> tuple[Any, bool]:
    """Return (value, present) of a tenant.* attribute from the tenant's attributes."""
    if attribute.startswith(TENANT_SETTINGS_PREFIX):
        settings = tenant.get("settings") or {}
        name = attribute[len(TENANT_SETTINGS_PREFIX) :]
        return settings.get(name), name in settings
    name = attribute[len("tenant.") :]
    return tenant.get(name), name in tenant


def is_tenant_attribute(attribute: str) -> bool:
    return attribute in TENANT_ATTRIBUTES or attribute.startswith(TENANT_SETTINGS_PREFIX)


# -- evaluation -----------------------------------------------------------------------------------


def _serve(key: str, entry: dict, step: dict, subject: str, reason: str, rule: int | None) -> Evaluation:
    serve = step.get("serve") or {}
    version = int(entry.get("version", 0))
    kind = entry.get("kind", "boolean")
    if not serve.get("enabled", False):
        return Evaluation(False, False if kind == "boolean" else None, None, reason, version, rule)
    if kind == "boolean":
        return Evaluation(True, True, None, reason, version, rule)
    variants = entry.get("variants") or []
    if "variant" in serve:
        chosen = next((v for v in variants if v["key"] == serve["variant"]), None)
        if chosen is not None:
            return Evaluation(True, chosen["value"], chosen["key"], reason, version, rule)
    if "value" in serve:
        return Evaluation(True, serve["value"], None, reason, version, rule)
    if any(int(v.get("weight", 0)) for v in variants):
        chosen = split_variant(key, subject, variants)
        if chosen is not None:
            return Evaluation(
                True, chosen["value"], chosen["key"], "split" if reason == "default" else reason, version, rule
            )
    return Evaluation(True, entry.get("default_value"), None, reason, version, rule)


def evaluate(key: str, entry: dict, subject: str, context: dict | None = None) -> Evaluation:
    """Evaluate a compiled entry for a subject and an evaluation context (attribute name -> value)."""
    context = context or {}
    for step in entry.get("steps", ()):
        conditions = step.get("match") or ()
        if not all(condition_holds(c, *_context_value(c["attribute"], subject, context)) for c in conditions):
            continue
        reason, rule = step["reason"], step.get("rule")
        percent = int(step.get("percent", 100))
        if percent < 100 and not rollout_admits(key, subject, percent):
            if step.get("miss") == "off":
                return Evaluation(
                    False,
                    False if entry.get("kind", "boolean") == "boolean" else None,
                    None,
                    reason,
                    int(entry.get("version", 0)),
                    rule,
                )
            continue
        return _serve(key, entry, step, subject, reason, rule)
    return Evaluation(
        False,
        False if entry.get("kind", "boolean") == "boolean" else None,
        None,
        "default",
        int(entry.get("version", 0)),
    )


# -- compiling a flag for one tenant --------------------------------------------------------------


def _tenant_conditions_hold(conditions: list[dict], tenant: dict) -> bool:
    return all(
        condition_holds(c, *tenant_value(c["attribute"], tenant))
        for c in conditions
        if is_tenant_attribute(c["attribute"])
    )


def compile_entry(
    *,
    flag: dict,
    tenant: dict,
    version: int,
    override: dict | None = None,
    owner: dict | None = None,
    plan_value: bool | None = None,
    segments: dict[str, list[dict]] | None = None,
) -> dict:
    """Resolve a flag's tenant-level layers into an entry for `evaluate`.

    flag: {"key", "kind", "default" (bool), "default_value", "variants", "rules", "archived", "tenant_editable"};
    tenant: {"id", "slug", "plan", "status", "labels", "settings"};
    override: the platform's {"enabled", "rollout_percent", "value", "variant", "owner_variants"} or None;
    owner: the owner's {"enabled", "variant"} or None; plan_value: the plan's default for the flag or None;
    segments: segment key -> its conditions.
    """
    segments = segments or {}
    key = flag["key"]
    steps: list[dict] = []
    entry: dict = {"kind": flag.get("kind", "boolean"), "version": version}
    if entry["kind"] != "boolean":
        entry["default_value"] = flag.get("default_value")
        if flag.get("variants"):
            entry["variants"] = [
                {"key": v["key"], "value": v["value"], "weight": int(v.get("weight", 0))} for v in flag["variants"]
            ]
    if flag.get("archived"):
        entry["steps"] = [{"reason": "archived", "serve": {"enabled": False}}]
        return entry
    if not flag.get("tenant_editable"):
        owner = None
    if owner is not None and not owner.get("enabled"):
        entry["steps"] = [{"reason": "owner_toggle", "serve": {"enabled": False}}]
        return entry
    if override is not None:
        if not override.get("enabled"):
            entry["steps"] = [{"reason": "admin_override", "serve": {"enabled": False}}]
            return entry
        serve: dict = {"enabled": True}
        reason = "admin_override"
        if override.get("variant"):
            serve["variant"] = override["variant"]
        elif override.get("value") is not None:
            serve["value"] = override["value"]
        allowed = override.get("owner_variants") or []
        if owner is not None and owner.get("variant") and owner["variant"] in allowed:
            serve = {"enabled": True, "variant": owner["variant"]}
            reason = "owner_toggle"
        percent = int(override.get("rollout_percent", 100))
        if percent < 100:
            entry["steps"] = [{"reason": "rollout", "percent": percent, "miss": "off", "serve": serve}]
        else:
            entry["steps"] = [{"reason": reason, "serve": serve}]
        return entry
    if owner is not None:
        entry["steps"] = [{"reason": "owner_toggle", "serve": {"enabled": True}}]
        return entry
    for position, rule in enumerate(flag.get("rules") or (), start=1):
        if rule.get("segment") and rule["segment"] not in segments:
            continue  # a segment that no longer exists matches nobody, never everybody
        conditions = list(segments[rule["segment"]]) if rule.get("segment") else []
        if not _tenant_conditions_hold(conditions, tenant):
            continue
        percent = int(rule.get("percent", 100))
        if rule.get("bucket_by") == "tenant":
            if not rollout_admits(key, str(tenant["id"]), percent):
                continue
            percent = 100
        step: dict = {"reason": "rule", "rule": position, "serve": dict(rule["serve"])}
        if rule.get("segment"):
            step["segment"] = rule["segment"]
        context_conditions = [c for c in conditions if not is_tenant_attribute(c["attribute"])]
        if context_conditions:
            step["match"] = context_conditions
        if percent < 100:
            step["percent"] = percent
            step["miss"] = "next"
        steps.append(step)
        if not context_conditions and percent >= 100:
            entry["steps"] = steps
            return entry
    if plan_value is not None:
        steps.append({"reason": "plan", "serve": {"enabled": bool(plan_value)}})
    else:
        steps.append({"reason": "default", "serve": {"enabled": bool(flag.get("default"))}})
    entry["steps"] = steps
    return entry


# -- validation -----------------------------------------------------------------------------------


def validate_value(kind: str, value: Any, *, field: str, schema: dict | None = None) -> Any:
    """Return `value` if it fits the flag's kind (and JSON Schema); else raise RuleError naming `field`."""
    if kind not in KINDS:
        raise RuleError(f"kind must be one of {', '.join(KINDS)}.", field="kind")
    if kind == "boolean" and not isinstance(value, bool):
        raise RuleError("a boolean flag's value is true or false.", field=field)
    if kind == "string" and not isinstance(value, str):
        raise RuleError("a string flag's value is a string.", field=field)
    if kind == "number" and (_number(value) is None or isinstance(value, str)):
        raise RuleError("a number flag's value is a finite number.", field=field)
    if len(json.dumps(value)) > MAX_VALUE_BYTES:
        raise RuleError(f"a value is at most {MAX_VALUE_BYTES} bytes of JSON.", field=field)
    if kind == "json" and schema:
        import jsonschema_rs  # validation only: the evaluator needs no JSON Schema library

        errors = [error.message for error in jsonschema_rs.validator_for(schema, offline=True).iter_errors(value)]
        if errors:
            raise RuleError("does not match the flag's JSON Schema: " + "; ".join(errors[:3]), field=field)
    return value


def validate_schema(schema: Any) -> dict | None:
    """Return a JSON Schema (or None for none); raise RuleError if it is not a valid schema."""
    if schema in (None, {}, ""):
        return None
    if not isinstance(schema, dict):
        raise RuleError("a JSON Schema is a JSON object.", field="schema")
    import jsonschema_rs

    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        raise RuleError(f"not a valid JSON Schema: {exc.message}", field="schema") from None
    # Building it resolves every $ref: one that points nowhere fails here, not when a value is checked.
    # Offline: a saved schema never makes the server fetch a URL.
    try:
        jsonschema_rs.validator_for(schema, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        reason = str(exc).splitlines()[0]
        raise RuleError(
            f"a $ref does not resolve within the schema (none is fetched): {reason}", field="schema"
        ) from None
    return schema


def validate_variants(kind: str, variants: Any, *, schema: dict | None = None) -> list[dict]:
    """Return cleaned variants: [{"key", "value", "weight"}], keys unique, weights 0-100 summing to 0 or 100."""
    if variants in (None, ""):
        return []
    if not isinstance(variants, list):
        raise RuleError("variants is a list of {key, value, weight}.", field="variants")
    if variants and kind == "boolean":
        raise RuleError("a boolean flag has no variants: use a rollout percentage.", field="variants")
    if len(variants) > MAX_VARIANTS:
        raise RuleError(f"at most {MAX_VARIANTS} variants.", field="variants")
    cleaned, seen = [], set()
    for index, variant in enumerate(variants):
        where = f"variants[{index}]"
        if not isinstance(variant, dict) or set(variant) - {"key", "value", "weight"} or "key" not in variant:
            raise RuleError("a variant is {key, value, weight}.", field=where)
        vkey = variant["key"]
        if not isinstance(vkey, str) or not re.match(VARIANT_KEY_PATTERN, vkey):
            raise RuleError("key: use 1-64 characters: a-z, 0-9, '_', '.', '-'.", field=f"{where}.key")
        if vkey in seen:
            raise RuleError(f"key {vkey!r} is used twice.", field=f"{where}.key")
        seen.add(vkey)
        if "value" not in variant:
            raise RuleError("a variant needs a value.", field=f"{where}.value")
        validate_value(kind, variant["value"], field=f"{where}.value", schema=schema)
        weight = variant.get("weight", 0)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise RuleError("weight is a whole percentage from 0 to 100.", field=f"{where}.weight")
        cleaned.append({"key": vkey, "value": variant["value"], "weight": weight})
    total = sum(v["weight"] for v in cleaned)
    if total not in (0, 100):
        raise RuleError(
            f"weights add up to {total}; they must add up to 100 (a split) or 0 (no split).", field="variants"
        )
    return cleaned


# The standard library's own parse tree of a pattern (a private module, stable since 3.11): validation only.
_regex_parser = importlib.import_module("re._parser")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _first_chars(items: list) -> frozenset[str] | None:
    """Return the literal characters a parsed pattern can start with, or None if it may start otherwise."""
    for op, av in items:
        name = str(op)
        if name == "AT":
            continue  # an anchor consumes nothing
        if name == "LITERAL":
            return frozenset({chr(av).lower()})
        if name == "SUBPATTERN":
            return _first_chars(av[3])
        if name == "BRANCH":
            union: frozenset[str] = frozenset()
            for branch in av[1]:
                first = _first_chars(branch)
                if first is None:
                    return None
                union |= first
            return union
        if name in _REPEATS and av[0] > 0:
            return _first_chars(av[2])
        return None
    return None  # the empty branch: it matches anywhere


def _regex_walk(items: list, *, repeated: bool, counts: dict) -> str:
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            low, high, body = av
            if high == _regex_parser.MAXREPEAT:
                counts["unbounded"] += 1
            if repeated and high > 1 and low != high:
                return "nested quantifiers such as (a+)+ are refused: they can take exponential time."
            problem = _regex_walk(body, repeated=repeated or high > 1, counts=counts)
            if problem:
                return problem
        elif name == "SUBPATTERN":
            problem = _regex_walk(av[3], repeated=repeated, counts=counts)
            if problem:
                return problem
        elif name == "BRANCH":
            if repeated:
                seen: frozenset[str] = frozenset()
                for first in (_first_chars(branch) for branch in av[1]):
                    if first is None or first & seen:
                        return (
                            "a repeated alternation whose branches can start alike, such as (a|ab)*, is refused: "
                            "it can take exponential time."
                        )
                    seen |= first
            for branch in av[1]:
                problem = _regex_walk(branch, repeated=repeated, counts=counts)
                if problem:
                    return problem
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            return "backreferences are refused."
        elif name in ("ASSERT", "ASSERT_NOT"):
            problem = _regex_walk(av[1], repeated=repeated, counts=counts)
            if problem:
                return problem
        elif name == "ATOMIC_GROUP":
            problem = _regex_walk(av, repeated=repeated, counts=counts)
            if problem:
                return problem
    return ""


def regex_problem(pattern: Any) -> str:
    """Return why a regex condition's pattern is refused ('' if it is accepted).

    Patterns are at most MAX_REGEX_LENGTH characters with at most MAX_UNBOUNDED_QUANTIFIERS
    unbounded quantifiers, no quantifier inside a repeated group (unless exact, as in (\\d{3}-)+),
    no repeated alternation whose branches can start alike, no backreferences. With inputs
    capped at MAX_REGEX_INPUT, one test stays in milliseconds.
    """
    if not isinstance(pattern, str) or len(pattern) > MAX_REGEX_LENGTH:
        return f"a regex is a string of at most {MAX_REGEX_LENGTH} characters."
    try:
        re.compile(pattern)
        parsed = _regex_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression: {exc}."
    counts = {"unbounded": 0}
    problem = _regex_walk(list(parsed), repeated=False, counts=counts)
    if problem:
        return problem
    if counts["unbounded"] > MAX_UNBOUNDED_QUANTIFIERS:
        return (
            f"at most {MAX_UNBOUNDED_QUANTIFIERS} unbounded quantifiers (*, +, {{n,}}); a regex condition "
            "searches anywhere in the value, so a leading or trailing .* is not needed."
        )
    return ""


def validate_conditions(conditions: Any, *, field: str = "conditions") -> list[dict]:
    """Return cleaned conditions [{"attribute", "op", "values"}]; raise RuleError naming the first bad one."""
    if not isinstance(conditions, list):
        raise RuleError("conditions is a list of {attribute, op, values}.", field=field)
    if len(conditions) > MAX_CONDITIONS:
        raise RuleError(f"at most {MAX_CONDITIONS} conditions.", field=field)
    cleaned = []
    for index, condition in enumerate(conditions):
        where = f"{field}[{index}]"
        if not isinstance(condition, dict) or set(condition) != {"attribute", "op", "values"}:
            raise RuleError("a condition is {attribute, op, values}.", field=where)
        attribute, op, values = condition["attribute"], condition["op"], condition["values"]
        if not isinstance(attribute, str) or not (
            attribute == "subject"
            or is_tenant_attribute(attribute)
            or (
                attribute.startswith(CONTEXT_PREFIX)
                and re.match(CONTEXT_NAME_PATTERN, attribute[len(CONTEXT_PREFIX) :])
            )
        ):
            raise RuleError(
                "attribute is subject, context.<name>, tenant.settings.<name> or one of "
                + ", ".join(TENANT_ATTRIBUTES)
                + ".",
                field=f"{where}.attribute",
            )
        if attribute.startswith(TENANT_SETTINGS_PREFIX) and not attribute[len(TENANT_SETTINGS_PREFIX) :]:
            raise RuleError("name the setting: tenant.settings.<name>.", field=f"{where}.attribute")
        if op not in OPS:
            raise RuleError(f"op must be one of {', '.join(OPS)}.", field=f"{where}.op")
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            raise RuleError(f"values is a list of 1 to {MAX_VALUES} items.", field=f"{where}.values")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
            raise RuleError("values are strings or numbers.", field=f"{where}.values")
        single = op in NUMBER_OPS + SEMVER_OPS + DATE_OPS
        if single and len(values) != 1:
            raise RuleError(f"{op} compares with exactly one value.", field=f"{where}.values")
        if op in NUMBER_OPS and _number(values[0]) is None:
            raise RuleError(f"{op} needs a number.", field=f"{where}.values")
        if op in SEMVER_OPS and parse_semver(values[0]) is None:
            raise RuleError(f"{op} needs a semantic version such as 1.4.0.", field=f"{where}.values")
        if op in DATE_OPS and parse_moment(values[0]) is None:
            raise RuleError(f"{op} needs an ISO 8601 date or date-time.", field=f"{where}.values")
        if op == "regex":
            for pattern in values:
                if not isinstance(pattern, str) or len(pattern) > MAX_REGEX_LENGTH:
                    raise RuleError(
                        f"a regex is a string of at most {MAX_REGEX_LENGTH} characters.", field=f"{where}.values"
                    )
                problem = regex_problem(pattern)
                if problem:
                    raise RuleError(problem, field=f"{where}.values")
        cleaned.append({"attribute": attribute, "op": op, "values": list(values)})
    return cleaned


def validate_serve(serve: Any, *, kind: str, variants: list[dict], schema: dict | None, field: str) -> dict:
    """Return a cleaned serve: {"enabled": bool} plus, when on, one of "variant" or "value"."""
    if not isinstance(serve, dict) or set(serve) - {"enabled", "variant", "value"}:
        raise RuleError("serve is {enabled} with an optional variant or value.", field=field)
    enabled = serve.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled is true or false.", field=f"{field}.enabled")
    cleaned: dict = {"enabled": enabled}
    if "variant" in serve and "value" in serve:
        raise RuleError("serve a variant or a value, not both.", field=field)
    if ("variant" in serve or "value" in serve) and (not enabled or kind == "boolean"):
        raise RuleError("only an enabled rule of a typed flag serves a variant or a value.", field=field)
    if "variant" in serve:
        if serve["variant"] not in {v["key"] for v in variants}:
            raise RuleError(f"no variant {serve['variant']!r} on this flag.", field=f"{field}.variant")
        cleaned["variant"] = serve["variant"]
    if "value" in serve:
        cleaned["value"] = validate_value(kind, serve["value"], field=f"{field}.value", schema=schema)
    return cleaned


def validate_rules(
    rules: Any, *, kind: str, variants: list[dict], schema: dict | None, segment_keys: set[str]
) -> list[dict]:
    """Return cleaned flag-level rules [{"segment", "percent", "bucket_by", "serve"}], in evaluation order."""
    if rules in (None, ""):
        return []
    if not isinstance(rules, list):
        raise RuleError("rules is a list of {segment, percent, bucket_by, serve}.", field="rules")
    if len(rules) > MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} rules.", field="rules")
    cleaned = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if (
            not isinstance(rule, dict)
            or set(rule) - {"segment", "percent", "bucket_by", "serve"}
            or "serve" not in rule
        ):
            raise RuleError("a rule is {segment, percent, bucket_by, serve}.", field=where)
        segment = rule.get("segment") or None
        if segment is not None and segment not in segment_keys:
            raise RuleError(f"no segment {segment!r}.", field=f"{where}.segment")
        percent = rule.get("percent", 100)
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise RuleError("percent is a whole number from 0 to 100.", field=f"{where}.percent")
        bucket_by = rule.get("bucket_by", "subject")
        if bucket_by not in ("subject", "tenant"):
            raise RuleError("bucket_by is subject or tenant.", field=f"{where}.bucket_by")
        serve = validate_serve(rule["serve"], kind=kind, variants=variants, schema=schema, field=f"{where}.serve")
        cleaned.append({"segment": segment, "percent": percent, "bucket_by": bucket_by, "serve": serve})
    return cleaned
