"""Every Redis key of the ops pages' history (docs/redis-keys.md is generated from FAMILIES)."""

from __future__ import annotations

from resilience.connection import key
from resilience.keyfamily import KeyFamily

SERIES = ("redis", "ratelimit", "breakers")

FAMILIES = (
    KeyFamily(
        pattern="hist:redis, hist:ratelimit, hist:breakers",
        type="streams, one entry per sample (id = the sample's minute in ms; fields in "
        "[observability.md](observability.md#history-on-the-ops-pages))",
        ttl="none: capped at exactly 1,440 entries (`MAXLEN`, 24 h at one a minute)",
        owner="`run_maintenance`'s history sampler (`history_sample`)",
        purpose="the charts of the ops pages; bounded by the cap",
    ),
    KeyFamily(
        pattern="hist:counts",
        type="hash `denied:<scope>` -> refusals so far (monotonic)",
        ttl="8 days, renewed on each write",
        owner="every app process, batched at most once a second (`DenialBatcher`)",
        purpose="refusal totals the sampler turns into rates",
    ),
    KeyFamily(
        pattern="hist:maintenance",
        type="hash task -> epoch seconds of its last success",
        ttl="none (one field per task)",
        owner="`run_maintenance`",
        purpose="shows when each maintenance task last succeeded; a field is removed by hand when a task is retired",
    ),
)


def series_key(series: str) -> str:
    """Return the stream of one page's samples."""
    if series not in SERIES:
        raise ValueError(f"series must be one of {', '.join(SERIES)}, not {series!r}")
    return key("hist", series)


def counts_key() -> str:
    """Return the hash of monotonic refusal totals (`denied:<scope>`) the app's processes add to."""
    return key("hist", "counts")


def maintenance_key() -> str:
    """Return the hash of each maintenance task's last success (`<task>` -> epoch seconds)."""
    return key("hist", "maintenance")
