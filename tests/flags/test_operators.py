"""Condition operators (tenants.flagrules): each op, list attributes, missing attributes, bounds."""

from __future__ import annotations

import time

import pytest

from tenants.flagrules import (
    MAX_CONTEXT_STRING,
    MAX_REGEX_INPUT,
    RuleError,
    condition_holds,
    evaluate,
    parse_moment,
    parse_semver,
    regex_problem,
    validate_conditions,
)


def holds(op: str, actual, values: list, present: bool = True) -> bool:
    return condition_holds({"attribute": "context.x", "op": op, "values": values}, actual, present)


@pytest.mark.parametrize(
    "op,actual,values,expected",
    [
        ("in", "eu", ["eu", "us"], True),
        ("in", "apac", ["eu", "us"], False),
        ("in", 3, ["3"], True),
        ("in", "3", [3], True),
        ("in", 3.0, [3], True),
        ("in", True, ["true"], True),
        ("not_in", "apac", ["eu", "us"], True),
        ("not_in", "eu", ["eu", "us"], False),
        ("contains", "enterprise-eu", ["prise"], True),
        ("contains", "free", ["prise"], False),
        ("starts_with", "v2-beta", ["v1", "v2"], True),
        ("starts_with", "beta-v2", ["v2"], False),
        ("ends_with", "ada@example.com", ["@example.com"], True),
        ("ends_with", "ada@example.org", ["@example.com"], False),
        ("regex", "user-42", [r"^user-\d+$"], True),
        ("regex", "user-x", [r"^user-\d+$"], False),
        ("lt", 3, [5], True),
        ("lt", 5, [5], False),
        ("lte", 5, [5], True),
        ("gt", "10", [9.5], True),
        ("gt", 9, [9.5], False),
        ("gte", 9.5, ["9.5"], True),
        ("lt", "ten", [5], False),
        ("lt", "1_000", [5000], False),  # JSON's number grammar only
        ("lt", " 1", [5], False),
        ("gt", "nan", [5], False),
        ("gt", 10**400, [5], False),  # beyond a double: not a number, never an exception
        ("lt", True, [5], False),
        ("semver_eq", "1.4.0", ["v1.4.0"], True),
        ("semver_eq", "1.4.0+build.7", ["1.4.0"], True),
        ("semver_lt", "1.4.0-rc.1", ["1.4.0"], True),
        ("semver_lt", "1.10.0", ["1.9.9"], False),
        ("semver_lte", "1.4.0", ["1.4.0"], True),
        ("semver_gt", "2.0.0", ["1.99.99"], True),
        ("semver_gte", "1.4.0-beta", ["1.4.0-alpha.9"], True),
        ("semver_gt", "1.4", ["1.0.0"], False),
        ("semver_gt", "1.4.0-01", ["1.0.0"], False),  # leading zero: not semver
        ("before", "2026-01-01", ["2026-06-01T00:00:00Z"], True),
        ("before", "2026-06-01T02:00:00+02:00", ["2026-06-01T00:00:01Z"], True),
        ("after", "2026-06-01T00:00:00Z", ["2026-06-01"], False),
        ("after", 1_800_000_000, ["2026-01-01"], True),
        ("after", "1800000000", ["2026-01-01"], False),  # epoch seconds are numbers, not strings
        ("before", "2026-02-30", ["2027-01-01"], False),
        ("before", "yesterday", ["2027-01-01"], False),
    ],
)
def test_operator(op, actual, values, expected):
    assert holds(op, actual, values) is expected


def test_list_attributes_hold_when_any_item_does_and_not_in_when_none_does():
    assert holds("in", ["beta", "eu"], ["eu"]) is True
    assert holds("in", ["beta", "eu"], ["us"]) is False
    assert holds("not_in", ["beta", "eu"], ["us"]) is True
    assert holds("not_in", ["beta", "eu"], ["eu"]) is False
    assert holds("starts_with", ["x-1", "y-2"], ["y-"]) is True
    assert holds("gt", [1, 7], [5]) is True
    assert holds("not_in", [], ["eu"]) is True
    assert holds("in", [], ["eu"]) is False


@pytest.mark.parametrize("op", ["in", "not_in", "contains", "regex", "lt", "semver_eq", "before"])
def test_a_missing_attribute_satisfies_no_operator(op):
    values = {"lt": [5], "semver_eq": ["1.0.0"], "before": ["2030-01-01"], "regex": ["x"]}.get(op, ["x"])
    assert holds(op, None, values, present=False) is False
    assert holds(op, None, values, present=True) is False


def test_missing_context_in_an_entry_falls_to_the_next_step():
    entry = {
        "kind": "boolean",
        "version": 1,
        "steps": [
            {
                "reason": "rule",
                "rule": 1,
                "match": [{"attribute": "context.plan", "op": "not_in", "values": ["free"]}],
                "serve": {"enabled": True},
            },
            {"reason": "default", "serve": {"enabled": False}},
        ],
    }
    assert evaluate("f", entry, "s", {}).reason == "default"
    assert evaluate("f", entry, "s", {"plan": "pro"}).reason == "rule"


def test_semver_pre_release_ordering_follows_semver_org():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    keys = [parse_semver(v) for v in ordered]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    "text,iso",
    [
        ("2026-12-02", "2026-12-02T00:00:00+00:00"),
        ("2026-12-02T10:30", "2026-12-02T10:30:00+00:00"),
        ("2026-12-02T10:30:05.123Z", "2026-12-02T10:30:05.123000+00:00"),
        ("2026-12-02 10:30:05-0130", "2026-12-02T12:00:05+00:00"),
        ("2026-12-02T10:30:05.123456789+01:00", "2026-12-02T09:30:05.123456+00:00"),
    ],
)
def test_dates_read_one_grammar(text, iso):
    assert parse_moment(text).isoformat() == iso


@pytest.mark.parametrize("text", ["2026-13-01", "2026-12-02T24:00", "02/12/2026", "2026-12-02T10:30+25:00", ""])
def test_dates_outside_the_grammar_are_not_dates(text):
    assert parse_moment(text) is None


def test_strings_beyond_the_bounds_match_nothing():
    long = "a" * (MAX_CONTEXT_STRING + 1)
    assert holds("contains", long, ["a"]) is False
    assert holds("not_in", long, ["b"]) is True  # not_in: no item is in the values
    assert holds("regex", "a" * MAX_REGEX_INPUT, ["a"]) is True
    assert holds("regex", "a" * (MAX_REGEX_INPUT + 1), ["a"]) is False


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+b",
        r"((a+))+b",  # nested one group deeper
        r"(x+x+)+y",
        r"(\w+\s?)*$",
        r"^(a{1,3})+$",
        r"(a|a)*b",  # alternatives that start alike, repeated
        r"(a|ab)*c",
        r"(.|x)+",
        r"(a)\1",
        r".*a.*b.*c",  # three unbounded quantifiers
        "a" * 129,
        "[",
    ],
)
def test_regexes_that_can_stall_a_request_are_refused(pattern):
    assert regex_problem(pattern)
    with pytest.raises(RuleError) as refused:
        validate_conditions([{"attribute": "context.x", "op": "regex", "values": [pattern]}])
    assert refused.value.field == "conditions[0].values"


@pytest.mark.parametrize(
    "pattern",
    [r"^user-\d+@.*\.com$", r"(?:www\.)?example\.com", r"(\d{3}-)+\d{4}", r"(foo|bar)+", r"(a|b)*c", r"(?i)^eu-"],
)
def test_everyday_regexes_are_accepted(pattern):
    assert regex_problem(pattern) == ""


@pytest.mark.parametrize("pattern", [r"\d+.*x", r"\d*\d*x", r"^user-\d+@.*\.com$"])
def test_an_accepted_pattern_on_the_longest_input_stays_fast(pattern):
    started = time.perf_counter()
    holds("regex", "1" * MAX_REGEX_INPUT, [pattern])
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "condition,field",
    [
        ({"attribute": "tenant.name", "op": "in", "values": ["x"]}, "conditions[0].attribute"),
        ({"attribute": "context.bad name", "op": "in", "values": ["x"]}, "conditions[0].attribute"),
        ({"attribute": "tenant.settings.", "op": "in", "values": ["x"]}, "conditions[0].attribute"),
        ({"attribute": "subject", "op": "like", "values": ["x"]}, "conditions[0].op"),
        ({"attribute": "subject", "op": "in", "values": []}, "conditions[0].values"),
        ({"attribute": "subject", "op": "in", "values": [True]}, "conditions[0].values"),
        ({"attribute": "subject", "op": "lt", "values": [1, 2]}, "conditions[0].values"),
        ({"attribute": "subject", "op": "lt", "values": ["x"]}, "conditions[0].values"),
        ({"attribute": "subject", "op": "semver_gt", "values": ["1.2"]}, "conditions[0].values"),
        ({"attribute": "subject", "op": "after", "values": ["soon"]}, "conditions[0].values"),
        ({"attribute": "subject", "op": "in"}, "conditions[0]"),
    ],
)
def test_invalid_conditions_name_the_field(condition, field):
    with pytest.raises(RuleError) as refused:
        validate_conditions([condition])
    assert refused.value.field == field
