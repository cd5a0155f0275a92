"""Properties of buckets and splits (hypothesis): deterministic, stable, fair, monotonic."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.flagrules import compile_entry, evaluate, rollout_admits, split_variant, variant_bucket

flag_keys = st.from_regex(r"[a-z0-9_.-]{1,64}", fullmatch=True)
subjects = st.text(max_size=200)


@st.composite
def weights(draw, min_size=2, max_size=6) -> list[int]:
    """Whole percentages summing to 100, each at least 1."""
    size = draw(st.integers(min_size, max_size))
    cuts = sorted(draw(st.lists(st.integers(1, 99), min_size=size - 1, max_size=size - 1, unique=True)))
    bounds = [0, *cuts, 100]
    return [b - a for a, b in itertools.pairwise(bounds)]


def variants_of(ws: list[int]) -> list[dict]:
    return [{"key": f"v{n}", "value": n, "weight": w} for n, w in enumerate(ws)]


@settings(deadline=None)  # a shared machine: time is not the property
@given(flag_keys, subjects, weights())
def test_a_split_is_deterministic(key, subject, ws):
    entry = compile_entry(
        flag={"key": key, "kind": "number", "default": True, "default_value": -1, "variants": variants_of(ws)},
        tenant={"id": "t"},
        version=1,
    )
    first = evaluate(key, entry, subject)
    assert first == evaluate(key, entry, subject)
    assert first.reason == "split" and first.variant is not None


@settings(deadline=None)  # a shared machine: time is not the property
@given(flag_keys, st.lists(subjects, min_size=1, max_size=50), weights(max_size=5), st.integers(1, 99))
def test_appending_a_variant_moves_nobody_between_the_earlier_ones(key, people, ws, taken):
    before = variants_of(ws)
    last = ws[-1]
    if last < 2:
        return
    share = min(taken, last - 1)
    after = [*variants_of([*ws[:-1], last - share]), {"key": "new", "value": 99, "weight": share}]
    for subject in people:
        old, new = split_variant(key, subject, before)["key"], split_variant(key, subject, after)["key"]
        # Only the last variant gives subjects away, and only to the new one.
        assert old == new or (old == before[-1]["key"] and new == "new")


@settings(max_examples=5, deadline=None)
@given(flag_keys, weights(max_size=5))
def test_splits_follow_their_weights_within_one_and_a_half_points(key, ws):
    variants = variants_of(ws)
    counts = {v["key"]: 0 for v in variants}
    total = 100_000
    for n in range(total):
        counts[split_variant(key, f"user-{n}", variants)["key"]] += 1
    for variant in variants:
        assert abs(counts[variant["key"]] / total * 100 - variant["weight"]) <= 1.5, (counts, ws)


@settings(deadline=None)  # a shared machine: time is not the property
@given(flag_keys, subjects, st.integers(0, 100), st.integers(0, 100))
def test_rollouts_are_monotonic_in_percent(key, subject, low, high):
    low, high = sorted((low, high))
    if rollout_admits(key, subject, low):
        assert rollout_admits(key, subject, high)
    assert rollout_admits(key, subject, 100) and not rollout_admits(key, subject, 0)


def test_the_variant_bucket_is_independent_of_the_rollout_bucket():
    # A 10 % rollout admits the lowest rollout buckets; were the buckets the same, all of them
    # would land in the first variant of a 50/50 split.
    admitted = [s for s in (f"user-{n}" for n in range(20_000)) if rollout_admits("beta", s, 10)]
    first = sum(variant_bucket("beta", s) < 5_000 for s in admitted)
    assert 0.45 < first / len(admitted) < 0.55
