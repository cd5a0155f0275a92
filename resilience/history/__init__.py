"""History for the ops pages: bounded time series sampled by run_maintenance, drawn as SVG charts.

Keys (resilience/history/keys.py): one capped stream per page, `<prefix>:hist:<series>`, whose
entry ids are the sample's minute (so two maintenance replicas sampling the same
minute write it once), and `<prefix>:hist:counts`, the monotonic totals the app's
processes add refusals to. Entries hold raw readings and totals; rates and deltas
are computed when read, so the sampler keeps no state between rounds.
"""

from __future__ import annotations

from resilience.history.keys import SERIES, counts_key, maintenance_key, series_key

__all__ = ["COUNTS_TTL", "MAXLEN", "SERIES", "counts_key", "maintenance_key", "series_key"]

# 24 h at one sample a minute.
MAXLEN = 1440
COUNTS_TTL = 8 * 24 * 3600
