"""The suite's guard against tests that straddle a UTC day (usage counters and quotas are per day)."""

import datetime as dt

from tests.conftest import DAY_BOUNDARY_GUARD_SECONDS, seconds_to_utc_midnight


def test_the_guard_knows_how_far_midnight_is():
    assert seconds_to_utc_midnight(dt.datetime(2026, 12, 2, 23, 59, 0, tzinfo=dt.UTC)) == 60
    assert seconds_to_utc_midnight(dt.datetime(2026, 12, 3, 0, 0, 0, tzinfo=dt.UTC)) == 86_400


def test_no_test_starts_in_the_last_seconds_of_a_day():
    assert seconds_to_utc_midnight() >= DAY_BOUNDARY_GUARD_SECONDS - 1 or seconds_to_utc_midnight() > 86_000
