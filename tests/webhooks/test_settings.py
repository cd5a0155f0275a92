"""WEBHOOKS_* variables: seed-style values load, a bad one stops start-up naming it and the expected form."""

from __future__ import annotations

NAMES = ["WEBHOOKS_TIMEOUT", "WEBHOOKS_RETRY_WINDOW", "WEBHOOKS_BREAKER_FAILURES", "WEBHOOKS_ALLOW_PRIVATE_TARGETS"]


def test_values_in_the_seed_formats_load(load_settings):
    values, err = load_settings(
        NAMES,
        DEBUG="true",
        WEBHOOKS_TIMEOUT="2500ms",
        WEBHOOKS_RETRY_WINDOW="1d",
        WEBHOOKS_BREAKER_FAILURES="3",
        WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
    )
    assert values == dict(zip(NAMES, [2.5, 86400.0, 3, True], strict=True)), err


def test_bad_values_name_the_variable(load_settings):
    for name, value in [
        ("WEBHOOKS_TIMEOUT", "fast"),
        ("WEBHOOKS_BREAKER_FAILURES", "0"),
        ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "maybe"),
        ("WEBHOOKS_LOG_RETENTION", "1s"),
    ]:
        values, err = load_settings(NAMES, DEBUG="true", **{name: value})
        assert values is None and name in err, (name, err[-300:])
