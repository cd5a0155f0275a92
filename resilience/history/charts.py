"""Server-rendered SVG line charts of the history series: no script, no CDN, a text alternative each.

Axis values are HTML around the SVG (readable at any width, in both admin themes);
the SVG stretches to its box and holds only the grid and the lines, drawn with a
non-scaling stroke so a 390 px phone gets the same crisp line as a desktop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import format_html, format_html_join

WIDTH, HEIGHT, PAD = 600, 120, 6
# Mid-tone colours with enough contrast on Django admin's light and dark backgrounds.
PALETTE = ("#2f80ed", "#e07b00", "#2e9e5b", "#d64545", "#8e5cc4", "#00a3a3")
TABLE_ROWS = 10


@dataclass
class Line:
    label: str
    values: list[float | None]
    color: str = ""


@dataclass
class Chart:
    """One chart: the SVG, its summary sentence (text alternative) and the newest rows as a table."""

    id: str
    title: str
    unit: str
    times: list[str]
    lines: list[Line]
    svg: str = ""
    summary: str = ""
    low: str = ""
    high: str = ""
    rows: list[list[str]] = field(default_factory=list)
    empty: bool = False


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "MB":
        return f"{value / 1_048_576:.1f} MB"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}{(' ' + unit) if unit else ''}"
    return f"{value:.2f}{(' ' + unit) if unit else ''}"


def _path(values: list[float | None], lo: float, hi: float) -> str:
    count = len(values)
    span = (hi - lo) or 1.0
    parts, pen_down = [], False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = WIDTH * (index / (count - 1) if count > 1 else 0.5)
        y = HEIGHT - PAD - (value - lo) / span * (HEIGHT - 2 * PAD)
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    if count == 1 and parts:  # one sample: a short dash so it is visible
        parts.append(f"L{WIDTH * 0.5 + 4:.1f},{y:.1f}")
    return " ".join(parts)


def line_chart(
    chart_id: str, title: str, unit: str, times: list[str], lines: list[Line], *, zero: bool = True
) -> Chart:
    """Build a Chart: scale every line to the chart's range and render the SVG and its text alternative."""
    for index, line in enumerate(lines):
        line.color = line.color or PALETTE[index % len(PALETTE)]
    chart = Chart(chart_id, title, unit, times, lines)
    values = [v for line in lines for v in line.values if v is not None]
    if not values:
        chart.empty = True
        chart.summary = f"{title}: no samples in the last 24 hours yet."
        return chart
    lo = 0.0 if zero else min(values)
    hi = max(values) if max(values) > lo else lo + 1
    chart.low, chart.high = _fmt(lo, unit), _fmt(hi, unit)
    grid = format_html_join(
        "",
        '<line x1="0" x2="{}" y1="{}" y2="{}" stroke="var(--hairline-color, #ccc)" stroke-width="1" '
        'vector-effect="non-scaling-stroke"/>',
        ((WIDTH, y, y) for y in (PAD, HEIGHT / 2, HEIGHT - PAD)),
    )
    paths = format_html_join(
        "",
        '<path d="{}" fill="none" stroke="{}" stroke-width="2" vector-effect="non-scaling-stroke" '
        'stroke-linejoin="round"><title>{}</title></path>',
        ((_path(line.values, lo, hi), line.color, line.label) for line in lines),
    )
    chart.summary = _summary(chart, times)
    chart.svg = format_html(
        '<svg class="history-svg" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" '
        'aria-labelledby="{}-title {}-desc" focusable="false"><title id="{}-title">{}</title>'
        '<desc id="{}-desc">{}</desc>{}{}</svg>',
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        chart.summary,
        grid,
        paths,
    )
    chart.rows = [
        [_time(times[i]), *(_fmt(line.values[i], unit) for line in lines)]
        for i in range(len(times) - 1, max(-1, len(times) - 1 - TABLE_ROWS), -1)
    ]
    return chart


def _time(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M")


def _summary(chart: Chart, times: list[str]) -> str:
    parts = []
    for line in chart.lines:
        present = [v for v in line.values if v is not None]
        if not present:
            parts.append(f"{line.label}: no data")
            continue
        parts.append(
            f"{line.label}: last {_fmt(present[-1], chart.unit)}, min {_fmt(min(present), chart.unit)}, "
            f"max {_fmt(max(present), chart.unit)}"
        )
    span = f"{_time(times[0])} to {_time(times[-1])} UTC, {len(times)} samples"
    return f"{chart.title} ({span}). " + "; ".join(parts) + "."


def redis_charts(history: dict) -> list[Chart]:
    points = history["points"]
    times = [p["t"] for p in points]

    def col(name):
        return [p.get(name) for p in points]

    maxmemory = [v if v else None for v in col("maxmemory")]
    return [
        line_chart("h-latency", "PING latency", "ms", times, [Line("latency", col("latency_ms"))]),
        line_chart("h-memory", "Memory", "MB", times, [Line("used", col("used_memory")), Line("maxmemory", maxmemory)]),
        line_chart("h-ops", "Operations per second", "ops/s", times, [Line("ops/s", col("ops_per_sec"))]),
        line_chart("h-hits", "Cache hit ratio", "%", times, [Line("hit ratio", col("hit_ratio"))]),
    ]


def ratelimit_charts(history: dict) -> list[Chart]:
    points = history["points"]
    times = [p["t"] for p in points]
    scopes = sorted({k for p in points for k in p if k != "t"})
    lines = [Line(scope, [p.get(scope) for p in points]) for scope in scopes]
    return [line_chart("h-denied", "Refusals (429) per sample, by scope", "", times, lines)]


def breaker_charts(history: dict) -> list[Chart]:
    points = history["points"]
    times = [p["t"] for p in points]
    names = sorted({name for p in points for name in p["state"]})
    return [
        line_chart(
            "h-states",
            "Breaker state (0 closed, 1 half-open, 2 open)",
            "",
            times,
            [Line(name, [p["state"].get(name) for p in points]) for name in names],
        ),
        line_chart(
            "h-failures",
            "Consecutive failures per breaker",
            "",
            times,
            [Line(name, [p["failures"].get(name) for p in points]) for name in names],
        ),
        line_chart(
            "h-transitions",
            "Transitions per sample",
            "",
            times,
            [Line("transitions", [p["transitions"] for p in points])],
        ),
    ]
