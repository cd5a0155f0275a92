"""The usage chart of the admin and the portal: stacked daily bars per metric, server-rendered, no JavaScript.

One layout (`usage_chart`) and one template (`tenants/usage_chart.html`) serve both
sites. The SVG holds only the bars and grid lines and stretches to its box; the axis
labels and the legend are HTML around it, so they keep their size on a 390 px phone
and the first and last day labels are aligned inward instead of being cut off. The
x-axis is a row of one equal cell per day, so no inline style positions anything
(the portal's pages carry no `style=` attribute).
Colours come from `static/tenants/usage-chart.css`, with a dark-theme set for the
admin's dark mode.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

# (metric stored in UsageDaily / the Redis usage hash, legend label); stacked bottom to top.
SERIES: tuple[tuple[str, str], ...] = (
    ("requests", "Served"),
    ("rate_limited", "Refused: rate limit"),
    ("quota_exceeded", "Refused: daily quota"),
)
WIDTH, HEIGHT = 600, 160  # viewBox units; the SVG is stretched to its box (preserveAspectRatio="none")
LABEL_EVERY = 7  # days between x-axis labels, counted back from the newest day


@dataclass(frozen=True)
class Series:
    metric: str
    label: str
    total: int
    css: str


@dataclass(frozen=True)
class Segment:
    metric: str
    count: int
    y: float
    height: float
    css: str


@dataclass(frozen=True)
class Day:
    day: dt.date
    values: list[int]  # one count per chart series, in the series' order
    total: int
    x: float
    width: float
    segments: list[Segment]
    title: str  # "Nov 25: 40 served, 2 refused: rate limit"
    label: str = ""  # x-axis label, empty for unlabelled days
    align: str = "center"  # "start"/"end" near the edges, so an edge label is never cut


@dataclass(frozen=True)
class Gridline:
    value: int
    y: float
    level: str  # "base", "mid" or "top": the HTML axis label's position class


@dataclass
class UsageChart:
    title: str
    days: list[Day]
    series: list[Series]
    gridlines: list[Gridline]
    peak: int
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    chart_id: str = "usage-chart"
    table: bool = True

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def summary(self) -> str:
        """One sentence for screen readers: totals per series and the busiest day."""
        parts = [f"{s.total} {s.label.lower()}" for s in self.series]
        busiest = max(self.days, key=lambda d: d.total, default=None)
        tail = (
            f"; the busiest day, {busiest.day:%b} {busiest.day.day}, had {busiest.total}"
            if self.peak and busiest is not None
            else ""
        )
        return f"{self.title}, last {len(self.days)} days: " + ", ".join(parts) + tail + "."

    def html(self) -> SafeString:
        """Render the figure (legend, axes, SVG, summary and the numbers as a table)."""
        return render_to_string("tenants/usage_chart.html", {"chart": self})


def nice_ceiling(value: int) -> int:
    """Return the smallest 1/2/5 x 10^n that is >= value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def usage_chart(
    rows: list[dict],
    *,
    series: tuple[tuple[str, str], ...] = SERIES,
    title: str = "API requests per day",
    chart_id: str = "usage-chart",
    table: bool = True,
) -> UsageChart:
    """Lay out `usage_daily()` rows (oldest first, one per day) as stacked bars, one stack per day.

    A series whose every count is zero is left out of the stack and the legend unless it
    is the first one (so an idle tenant still shows "0 served"), keeping the legend short.
    """
    present = [
        (metric, label)
        for index, (metric, label) in enumerate(series)
        if index == 0 or any(int(row.get(metric, 0) or 0) for row in rows)
    ]
    counted = [(row["day"], {metric: int(row.get(metric, 0) or 0) for metric, _ in present}) for row in rows]
    peak = max((sum(counts.values()) for _, counts in counted), default=0)
    top = nice_ceiling(peak)
    slot = WIDTH / max(len(counted), 1)
    days = []
    for index, (day, counts) in enumerate(counted):
        base, segments = float(HEIGHT), []
        for position, (metric, _label) in enumerate(present):
            height = HEIGHT * counts[metric] / top
            base -= height
            segments.append(Segment(metric, counts[metric], round(base, 2), round(height, 2), f"s{position}"))
        # The newest day is always labelled, then every LABEL_EVERY days back: labels never crowd.
        labelled = (len(counted) - 1 - index) % LABEL_EVERY == 0
        centre = 100 * (index + 0.5) / len(counted)
        align = "start" if centre < 8 else "end" if centre > 92 else "center"
        tip = f"{day:%b} {day.day}: " + ", ".join(f"{counts[m]} {label.lower()}" for m, label in present)
        days.append(
            Day(
                day=day,
                values=[counts[metric] for metric, _ in present],
                total=sum(counts.values()),
                x=round(index * slot + slot * 0.12, 2),
                width=round(slot * 0.76, 2),
                segments=segments,
                title=tip,
                label=f"{day:%b} {day.day}" if labelled else "",
                align=align,
            )
        )
    # With a top of 1 the half line would read 0 twice: keep the base and the top only.
    shares = (0, 1) if top == 1 else (0, 0.5, 1)
    levels = {0: "base", 0.5: "mid", 1: "top"}
    gridlines = [
        Gridline(value=int(top * share), y=round(HEIGHT * (1 - share), 2), level=levels[share]) for share in shares
    ]
    totals = [
        Series(metric, label, sum(counts[metric] for _, counts in counted), f"s{position}")
        for position, (metric, label) in enumerate(present)
    ]
    return UsageChart(
        title=title,
        days=days,
        series=totals,
        gridlines=gridlines,
        peak=peak,
        total=sum(s.total for s in totals),
        chart_id=chart_id,
        table=table,
    )
