"""History for the ops pages: bounded time series sampled by run_maintenance, drawn as SVG charts.

Keys (docs/redis-keys.md): one capped stream per page, `<prefix>:hist:<series>`, whose
entry ids are the sample's minute (so two maintenance replicas sampling the same
minute write it once), and `<prefix>:hist:counts`, the monotonic totals the app's
processes add refusals to. Entries hold raw readings and totals; rates and deltas
are computed when read, so the sampler keeps no state between rounds.
"""

from __future__ import annotations

from resilience.connection import key

SERIES = ("redis", "ratelimit", "breakers")
# 24 h at one sample a minute.
MAXLEN = 1440
COUNTS_TTL = 8 * 24 * 3600


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
