"""Server-rendered SVG charts (no JavaScript, no CDN) for usage pages in the admin and the portal."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 180, 44, 22, 10


def usage_svg(rows: list[dict], *, metric: str = "requests", title: str = "Requests per day") -> SafeString:
    """Return an accessible SVG bar chart of `metric` per day from `usage_daily()` rows."""
    values = [int(row.get(metric, 0)) for row in rows]
    peak = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(rows), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="usage-chart" font-family="sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 4}" y2="{PAD_TOP + plot_h}" stroke="#888"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" fill="#555">{peak}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end" fill="#555">0</text>',
    ]
    for index, (row, value) in enumerate(zip(rows, values, strict=True)):
        bar_h = plot_h * value / peak
        x = PAD_LEFT + index * slot + 1
        y = PAD_TOP + plot_h - bar_h
        day = escape(str(row["day"]))
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" height="{bar_h:.1f}" fill="#417690">'
            f"<title>{day}: {value} {escape(metric)}</title></rect>"
        )
        # First, last and weekly labels, skipping a weekly one that would touch the last.
        weekly = len(rows) > 10 and index % 7 == 0 and index < len(rows) - 4
        if index in (0, len(rows) - 1) or weekly:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" fill="#555">{day[5:]}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is a number or escaped
