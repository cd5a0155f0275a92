"""Server-rendered SVG geometry for the usage bar chart (no JavaScript, no chart library)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 12, 28


@dataclass(frozen=True)
class Bar:
    day: dt.date
    count: int
    x: float
    y: float
    width: float
    height: float
    show_label: bool

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass(frozen=True)
class Gridline:
    value: int
    y: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    gridlines: list[Gridline]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM
    plot_right: int = WIDTH - RIGHT


def nice_ceiling(value: int) -> int:
    """Return the smallest 1/2/5 x 10^n that is >= value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def daily_bar_chart(counts: dict[dt.date, int], *, end: dt.date, days: int = 30) -> BarChart:
    """Lay out one bar per day for the `days` days ending on `end`, missing days as zero."""
    series = [(end - dt.timedelta(days=offset), 0) for offset in range(days - 1, -1, -1)]
    series = [(day, int(counts.get(day, 0))) for day, _ in series]
    peak = max((count for _, count in series), default=0)
    top = nice_ceiling(peak)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / days
    bars = []
    for index, (day, count) in enumerate(series):
        height = plot_height * count / top
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(LEFT + index * slot + slot * 0.15, 2),
                y=round(TOP + plot_height - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                # Every 7th day (counting back from the last) gets an axis label so they never overlap.
                show_label=(days - 1 - index) % 7 == 0,
            )
        )
    # With a peak of 1 the half line would be labelled 0 twice: keep the base and the top only.
    shares = (0, 1) if top == 1 else (0, 0.5, 1)
    gridlines = [Gridline(value=int(top * share), y=round(TOP + plot_height * (1 - share), 2)) for share in shares]
    return BarChart(bars=bars, gridlines=gridlines, total=sum(count for _, count in series), peak=peak)
