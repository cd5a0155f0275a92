"""The one usage chart of the admin and the portal: stacked series per day, axis labels that fit."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tenants.charts import nice_ceiling, usage_chart

END = dt.date(2026, 11, 25)


def rows(counts: dict[int, dict], days: int = 30) -> list[dict]:
    """usage_daily()-shaped rows, oldest first; `counts` maps days-before-END to metrics."""
    return [
        {"day": END - dt.timedelta(days=back), "requests": 0, **counts.get(back, {})}
        for back in range(days - 1, -1, -1)
    ]


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 180, 999)] == [1, 1, 5, 10, 10, 20, 200, 1000]


def test_series_stack_per_day_scaled_to_the_busiest_total():
    chart = usage_chart(rows({0: {"requests": 50, "rate_limited": 50}, 29: {"requests": 100}}))
    assert [s.metric for s in chart.series] == ["requests", "rate_limited"]  # no quota refusals: no third series
    assert [s.total for s in chart.series] == [150, 50] and chart.peak == 100
    first, last = chart.days[0], chart.days[-1]
    assert first.day == END - dt.timedelta(days=29) and last.day == END
    served, refused = last.segments
    assert served.height == pytest.approx(refused.height) == pytest.approx(first.segments[0].height / 2)
    assert refused.y + refused.height == pytest.approx(served.y)  # stacked: refused sits on served
    assert served.y + served.height == pytest.approx(chart.height)
    assert last.title == "Nov 25: 50 served, 50 refused: rate limit"
    assert [g.value for g in chart.gridlines] == [0, 50, 100]


def test_an_idle_tenant_has_one_series_and_two_gridlines():
    chart = usage_chart(rows({}))
    assert chart.empty and [s.label for s in chart.series] == ["Served"]
    assert [g.value for g in chart.gridlines] == [0, 1]
    assert "No API requests" in chart.html()


@pytest.mark.parametrize("days", [7, 10, 30, 31])
def test_the_newest_day_is_labelled_and_edge_labels_are_aligned_inward(days):
    chart = usage_chart(rows({}, days=days))
    labelled = [d for d in chart.days if d.label]
    assert labelled[-1] is chart.days[-1] and labelled[-1].align == "end"
    assert [chart.days.index(d) for d in labelled] == list(range(days - 1, -1, -7))[::-1]  # a week apart
    edges = {chart.days.index(d) for d in labelled if d.align != "center"}
    assert edges <= {0, 1, days - 2, days - 1}  # only labels next to an edge hang inward


def test_html_has_a_legend_a_text_alternative_and_every_number_in_a_table():
    chart = usage_chart(rows({0: {"requests": 7, "rate_limited": 3, "quota_exceeded": 1}}), title="Calls per day")
    html = chart.html()
    assert chart.title == "Calls per day" and "<strong>Calls per day</strong>" in html
    for label in ("Served", "Refused: rate limit", "Refused: daily quota"):
        assert label in html
    assert 'role="img"' in html and "<desc" in html
    assert "Nov 25: 7 served, 3 refused: rate limit, 1 refused: daily quota" in html
    assert html.count('<g class="usage-day"') == 30
    assert len(re.findall(r"<rect class=\"s\d\"", html)) == 3  # zero-height segments are not drawn
    table = html[html.index("<table") :]
    assert '<td class="usage-num">7</td><td class="usage-num">3</td><td class="usage-num">1</td>' in table
    assert 'fill="#' not in html and " style=" not in html  # colours and positions come from the stylesheet
